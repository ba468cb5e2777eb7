import { packageVersion } from './lib/package-root.js';

/** The package version, read once from package.json (from src/ with tsx and from the dist/ bundle). */
export const VERSION = packageVersion();
