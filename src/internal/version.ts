/** The version of this package, as commands report it (kept equal to package.json's by a test). */
export const packageVersion = "0.1.0"
