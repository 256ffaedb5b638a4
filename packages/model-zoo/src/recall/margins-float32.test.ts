/** Attention and logit margins of the recall model, in emulated float32, for every offset up to 131072. */
import { marginTests } from './margin-suite.ts';

marginTests('float32');
