import base from '../../vitest.base.mts';
export default base;
