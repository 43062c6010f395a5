// Preload for node children that run workspace TypeScript sources: the capture helpers' hook compiles
// `.ts` files; this adds what it lacks, NodeNext-style relative imports written as `./x.js` (as in
// @pagevault/objstore and @pagevault/objstore-s3), which resolve to the `./x.ts` source beside them.
// Run with `node --conditions=@pagevault/source -r <this file> script.ts`.
const Module = require('node:module');
require('../capture/helpers/ts-require-hook.js');

const resolve = Module._resolveFilename;
Module._resolveFilename = function resolveTsForJs(request, parent, ...rest) {
  try {
    return resolve.call(this, request, parent, ...rest);
  } catch (e) {
    if (!/^\.\.?\/.*\.js$/.test(request)) throw e;
    return resolve.call(this, request.slice(0, -3) + '.ts', parent, ...rest);
  }
};
