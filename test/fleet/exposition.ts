/**
 * A parser of Prometheus' text exposition format (0.0.4) for tests: it
 * throws on anything the format does not allow (a malformed line, a sample
 * before its family's TYPE, a family declared twice, a bad label escape, a
 * value that is not a number), so a test that parses a scrape checks that
 * it is valid.
 */

/** One sample. */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** One metric family. */
export interface Family {
  readonly name: string
  readonly type: string
  readonly help: string | undefined
  readonly samples: Array<Sample>
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const types = new Set(["counter", "gauge", "histogram", "summary", "untyped"])

const parseValue = (text: string, line: string): number => {
  if (text === "+Inf") return Infinity
  if (text === "-Inf") return -Infinity
  if (text === "NaN") return NaN
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`not a number ${JSON.stringify(text)} in ${line}`)
  return Number(text)
}

// Labels from just after "{"; returns them and the index after "}".
const parseLabels = (line: string, start: number): [Record<string, string>, number] => {
  const labels: Record<string, string> = {}
  let i = start
  for (;;) {
    if (line[i] === "}") return [labels, i + 1]
    const eq = line.indexOf("=", i)
    if (eq === -1) throw new Error(`bad labels in ${line}`)
    const name = line.slice(i, eq)
    if (!labelName.test(name)) throw new Error(`bad label name ${JSON.stringify(name)} in ${line}`)
    if (name in labels) throw new Error(`label ${name} twice in ${line}`)
    if (line[eq + 1] !== "\"") throw new Error(`unquoted label value in ${line}`)
    let value = ""
    let j = eq + 2
    for (;; j++) {
      const c = line[j]
      if (c === undefined) throw new Error(`unterminated label value in ${line}`)
      if (c === "\"") break
      if (c === "\\") {
        const next = line[++j]
        if (next === "\\") value += "\\"
        else if (next === "\"") value += "\""
        else if (next === "n") value += "\n"
        else throw new Error(`bad escape in ${line}`)
      } else {
        value += c
      }
    }
    labels[name] = value
    i = j + 1
    if (line[i] === ",") i++
    else if (line[i] !== "}") throw new Error(`expected , or } in ${line}`)
  }
}

const familyOf = (name: string, families: Map<string, Family>): Family | undefined => {
  const exact = families.get(name)
  if (exact !== undefined) return exact
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!name.endsWith(suffix)) continue
    const family = families.get(name.slice(0, -suffix.length))
    if (family !== undefined && (family.type === "histogram" || (family.type === "summary" && suffix !== "_bucket"))) return family
  }
  return undefined
}

/** The families of an exposition, by name; throws on invalid text. */
export const parse = (text: string): Map<string, Family> => {
  const families = new Map<string, Family>()
  const helps = new Map<string, string>()
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
      if (m === null) continue
      const [, keyword, name, rest] = m
      if (!metricName.test(name!)) throw new Error(`bad metric name in ${line}`)
      if (keyword === "HELP") {
        helps.set(name!, rest!)
      } else {
        if (!types.has(rest!)) throw new Error(`bad type in ${line}`)
        if (families.has(name!)) throw new Error(`family ${name} declared twice`)
        families.set(name!, { name: name!, type: rest!, help: helps.get(name!), samples: [] })
      }
      continue
    }
    const brace = line.indexOf("{")
    const space = line.indexOf(" ")
    const nameEnd = brace !== -1 && (space === -1 || brace < space) ? brace : space
    if (nameEnd <= 0) throw new Error(`bad sample ${line}`)
    const name = line.slice(0, nameEnd)
    if (!metricName.test(name)) throw new Error(`bad metric name in ${line}`)
    const [labels, after] = nameEnd === brace ? parseLabels(line, brace + 1) : [{}, nameEnd]
    const parts = line.slice(after).trim().split(/\s+/)
    if (parts.length < 1 || parts.length > 2 || parts[0] === "") throw new Error(`bad value in ${line}`)
    if (parts.length === 2 && !/^-?\d+$/.test(parts[1]!)) throw new Error(`bad timestamp in ${line}`)
    const family = familyOf(name, families)
    if (family === undefined) throw new Error(`sample ${name} before its TYPE`)
    family.samples.push({ name, labels, value: parseValue(parts[0]!, line) })
  }
  return families
}

/** The value of the sample `name` whose labels include `labels`; the sum when several match, undefined when none. */
export const valueOf = (
  families: Map<string, Family>,
  name: string,
  labels: Readonly<Record<string, string>> = {}
): number | undefined => {
  const family = familyOf(name, families)
  const matching = (family?.samples ?? []).filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  )
  return matching.length === 0 ? undefined : matching.reduce((sum, s) => sum + s.value, 0)
}
