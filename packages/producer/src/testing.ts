/**
 * Test support for other packages' tests (`@kvfold/producer/testing`): writers of real tar and zip
 * bytes, including the hostile entries (`../x`, links, lying sizes) that honest tools refuse to make.
 */
export { rawTar, rawZip, type TarMember, type ZipMember } from './test-fixtures.ts';
