/**
 * How result values come back, the same from PGlite and from node-postgres:
 * int8 as a JS number (ids, sizes and counts stay well below 2^53), numeric
 * as its exact decimal string, timestamptz as a Date, json and jsonb parsed,
 * date and interval as PostgreSQL prints them (a calendar date is not an
 * instant), arrays element by element the same way.
 */
import * as Pg from "pg"

/** PostgreSQL's type oids for the types whose parsing is fixed here. */
export const Oid = {
  int8: 20,
  int8Array: 1016,
  textArray: 1009,
  numericArray: 1231,
  date: 1082,
  interval: 1186,
  intervalArray: 1187
} as const

const identity = (value: string): string => value

type Nested<A> = A | null | ReadonlyArray<Nested<A>>
const deepMap = <A, B>(value: Nested<A>, f: (a: A) => B): Nested<B> =>
  value === null ? null : Array.isArray(value) ? value.map((item) => deepMap(item, f)) : f(value as A)

/** PGlite's parsers beyond its defaults (its array parsers follow its element parsers). */
export const pgliteParsers: Record<number, (value: string) => unknown> = {
  [Oid.int8]: Number,
  [Oid.date]: identity
}

// node-postgres types its oids as the enum of the ones it knows, which lacks text[].
const parserOf = Pg.types.getTypeParser as (oid: number, format?: "text" | "binary") => (value: string) => unknown
const stringArray = parserOf(Oid.textArray) as (value: string) => Nested<string>

const pgParsers: Record<number, (value: string) => unknown> = {
  [Oid.int8]: Number,
  [Oid.int8Array]: (value) => deepMap(stringArray(value), Number),
  [Oid.numericArray]: stringArray,
  [Oid.date]: identity,
  [Oid.interval]: identity,
  [Oid.intervalArray]: stringArray
}

/** node-postgres's `types` option: the parsers above, node-postgres's own for everything else. */
export const pgTypes: Pg.CustomTypesConfig = {
  getTypeParser: (oid, format) => (format === "binary" ? undefined : pgParsers[oid]) ?? parserOf(oid, format)
}
