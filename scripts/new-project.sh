#!/usr/bin/env bash
# Creates a workspace package: scripts/new-project.sh <libs|apps> <name> <scope> <type>
set -euo pipefail
kind=$1 name=$2 scope=$3 type=$4
dir="$kind/$name"
mkdir -p "$dir/src"
cat > "$dir/package.json" <<JSON
{
  "name": "@pagevault/$name",
  "version": "0.1.0",
  "private": true,
  "main": "./dist/index.js",
  "types": "./dist/index.d.ts",
  "exports": {
    ".": {
      "@pagevault/source": "./src/index.ts",
      "types": "./dist/index.d.ts",
      "default": "./dist/index.js"
    }
  },
  "scripts": {
    "build": "tsc -p tsconfig.lib.json",
    "lint": "eslint .",
    "test": "vitest run"
  },
  "nx": { "tags": ["scope:$scope", "type:$type"] }
}
JSON
cat > "$dir/tsconfig.lib.json" <<JSON
{
  "extends": "../../tsconfig.base.json",
  "compilerOptions": { "outDir": "dist", "rootDir": "src", "customConditions": [] },
  "include": ["src/**/*.ts"],
  "exclude": ["src/**/*.spec.ts"]
}
JSON
cat > "$dir/vitest.config.mts" <<'TS'
import base from '../../vitest.base.mts';
export default base;
TS
[ -f "$dir/src/index.ts" ] || echo "export {};" > "$dir/src/index.ts"
