/** Attention and logit margins of the recall model, in float64, for every offset up to 131072. */
import { marginTests } from './margin-suite.ts';

marginTests('float64');
