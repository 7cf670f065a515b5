/**
 * Tables for people: a header line and one line per row, columns padded to
 * their widest cell and two spaces apart, numbers aligned right, no trailing
 * spaces and no terminal escapes (a table piped to `grep` or `awk` splits on
 * runs of spaces). Scripts read `--json` instead.
 */

/** A column: its heading, and whether its cells align right (counts). */
export interface Column {
  readonly header: string
  readonly align?: "left" | "right"
}

/** A cell's text for a value that may be absent: `-`. */
export const cell = (value: string | number | boolean | undefined | null): string =>
  value === undefined || value === null || value === "" ? "-" : String(value)

/** The table's text, ending in a newline; `empty` is printed instead when there are no rows. */
export const render = (
  columns: ReadonlyArray<Column | string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  empty = "(none)"
): string => {
  if (rows.length === 0) return `${empty}\n`
  const cols = columns.map((c): Column => (typeof c === "string" ? { header: c } : c))
  const widths = cols.map((c, i) => Math.max(c.header.length, ...rows.map((row) => (row[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cols.map((c, i) => {
      const text = cells[i] ?? ""
      return c.align === "right" ? text.padStart(widths[i]!) : text.padEnd(widths[i]!)
    }).join("  ").trimEnd()
  return [line(cols.map((c) => c.header.toUpperCase())), ...rows.map(line)].join("\n") + "\n"
}

/** Facts about one thing, as `name: value` lines with the values lined up. */
export const facts = (pairs: ReadonlyArray<readonly [name: string, value: string]>): string => {
  const width = Math.max(0, ...pairs.map(([name]) => name.length + 1))
  return pairs.map(([name, value]) => `${`${name}:`.padEnd(width)}  ${value}`.trimEnd()).join("\n") + "\n"
}
