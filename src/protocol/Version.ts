/**
 * Versions as update servers compare them: semantic versions (`1.2.3-rc.1`)
 * and dotted Omaha versions (`1.3.23.0`), where missing trailing components
 * count as zero (`1.2` equals `1.2.0.0`).
 */
import { Effect, Option, Order, Schema } from "effect"

/** A parsed version: numeric components, pre-release identifiers, and the text it came from. */
export interface Version {
  readonly text: string
  /** Numeric components without leading zeros, as digit strings (no size limit). */
  readonly numbers: ReadonlyArray<string>
  readonly prerelease: ReadonlyArray<string>
}

/** A version string that is not a version (or not a semantic version where one is required). */
export class InvalidVersion extends Schema.TaggedError<InvalidVersion>()("InvalidVersion", {
  version: Schema.String,
  expected: Schema.Literal("semver", "version")
}) {
  override get message(): string {
    return this.expected === "semver"
      ? `${JSON.stringify(this.version)} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.2.3)`
      : `${JSON.stringify(this.version)} is not a version (e.g. 1.2.3 or 1.3.23.0)`
  }
}

const identifier = "[0-9A-Za-z-]+"
const suffix = `(?:-(${identifier}(?:\\.${identifier})*))?(?:\\+${identifier}(?:\\.${identifier})*)?`
const semverPattern = new RegExp(`^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)${suffix}$`)
const dottedPattern = new RegExp(`^v?(\\d+(?:\\.\\d+)*)${suffix}$`)

const trimZeros = (digits: string): string => digits.replace(/^0+(?=\d)/, "")

const make = (text: string, numbers: ReadonlyArray<string>, prerelease: string | undefined): Version => ({
  text,
  numbers: numbers.map(trimZeros),
  prerelease: prerelease === undefined ? [] : prerelease.split(".")
})

/** Parses a semantic version strictly (MAJOR.MINOR.PATCH, optional pre-release and build). */
export const parseSemverOption = (text: string): Option.Option<Version> => {
  const m = semverPattern.exec(text)
  return m === null ? Option.none() : Option.some(make(text, [m[1]!, m[2]!, m[3]!], m[4]))
}

/** Parses a semantic or dotted version (`1`, `1.2`, `1.3.23.0`, `v2.0.0-rc.1`). */
export const parseOption = (text: string): Option.Option<Version> => {
  const m = dottedPattern.exec(text)
  return m === null ? Option.none() : Option.some(make(text, m[1]!.split("."), m[2]))
}

/** Parses a semantic version strictly, failing with {@link InvalidVersion}. */
export const parseSemver = (text: string): Effect.Effect<Version, InvalidVersion> =>
  Option.match(parseSemverOption(text), {
    onNone: () => Effect.fail(new InvalidVersion({ version: text, expected: "semver" })),
    onSome: Effect.succeed
  })

/** Parses a semantic or dotted version, failing with {@link InvalidVersion}. */
export const parse = (text: string): Effect.Effect<Version, InvalidVersion> =>
  Option.match(parseOption(text), {
    onNone: () => Effect.fail(new InvalidVersion({ version: text, expected: "version" })),
    onSome: Effect.succeed
  })

const compareDigits = (a: string, b: string): -1 | 0 | 1 =>
  a.length !== b.length ? (a.length < b.length ? -1 : 1) : a < b ? -1 : a > b ? 1 : 0

const numeric = /^\d+$/

// Semantic versioning §11: numeric identifiers compare numerically and sort
// before alphanumeric ones; a longer list wins when all else is equal.
const compareIdentifiers = (a: string, b: string): -1 | 0 | 1 => {
  const an = numeric.test(a)
  const bn = numeric.test(b)
  if (an && bn) return compareDigits(trimZeros(a), trimZeros(b))
  if (an !== bn) return an ? -1 : 1
  return a < b ? -1 : a > b ? 1 : 0
}

/** Orders versions: numbers component-wise (missing ones are 0), then pre-release (which sorts first). */
export const compare = (a: Version, b: Version): -1 | 0 | 1 => {
  const length = Math.max(a.numbers.length, b.numbers.length)
  for (let i = 0; i < length; i++) {
    const c = compareDigits(a.numbers[i] ?? "0", b.numbers[i] ?? "0")
    if (c !== 0) return c
  }
  if (a.prerelease.length === 0 || b.prerelease.length === 0) {
    return a.prerelease.length === b.prerelease.length ? 0 : a.prerelease.length === 0 ? 1 : -1
  }
  const common = Math.min(a.prerelease.length, b.prerelease.length)
  for (let i = 0; i < common; i++) {
    const c = compareIdentifiers(a.prerelease[i]!, b.prerelease[i]!)
    if (c !== 0) return c
  }
  return a.prerelease.length === b.prerelease.length ? 0 : a.prerelease.length < b.prerelease.length ? -1 : 1
}

/** {@link compare} as an `Order`, for sorting and `Order.max`. */
export const order: Order.Order<Version> = compare

/** True when `a` sorts before `b`. */
export const lessThan = (a: Version, b: Version): boolean => compare(a, b) < 0

/** True when `a` and `b` name the same version (`1.2` equals `1.2.0.0`). */
export const equals = (a: Version, b: Version): boolean => compare(a, b) === 0

/** Compares two version strings; none when either is not a version. */
export const compareText = (a: string, b: string): Option.Option<-1 | 0 | 1> =>
  Option.zipWith(parseOption(a), parseOption(b), compare)
