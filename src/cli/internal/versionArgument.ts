/**
 * `--version V` for the updater commands. @effect/cli reserves `--version`
 * as its built-in "print the program's version" flag and lets it win over a
 * command's own option of that name, so the commands name theirs
 * `--release-version` and this maps `--version V` (and `--version=V`) onto it
 * before parsing; a bare `--version` still prints the program's version.
 */

/** The option name the commands declare. */
export const releaseVersion = "release-version"

/** `argv` with `--version V` and `--version=V` spelled as `--release-version`. */
export const withReleaseVersion = (argv: ReadonlyArray<string>): Array<string> =>
  argv.map((arg, i) => {
    if (arg.startsWith("--version=")) return `--${releaseVersion}=${arg.slice("--version=".length)}`
    const next = argv[i + 1]
    return arg === "--version" && next !== undefined && !next.startsWith("-") ? `--${releaseVersion}` : arg
  })
