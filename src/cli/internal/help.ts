/**
 * `--help` for every command: the usage lines, the description, each
 * argument and option with its own description (and its default, see
 * `flags.ts`), and the command's footer (its exit statuses). Terminal styles
 * only on a terminal: piped, or with NO_COLOR or TERM=dumb, the text is
 * plain. @effect/cli's own help prints styles everywhere and opens each
 * option with its type's generic sentence ("A user-defined piece of text."),
 * which this leaves out.
 */
import { CliConfig, CommandDescriptor, type HelpDoc, type Usage } from "@effect/cli"
import type * as Span from "@effect/cli/HelpDoc/Span"
import { Config, Effect, Option } from "effect"

/** How help is written: with terminal styles or plain, and how wide. */
export interface Style {
  readonly color: boolean
  readonly width: number
}

/** The plain style of a pipe or a file. */
export const plain: Style = { color: false, width: 80 }

/** What decides the style of help: the output stream and the environment's NO_COLOR and TERM. */
export interface Output {
  readonly isTTY: boolean
  readonly columns: number | undefined
  readonly noColor: string
  readonly term: string
}

/** Styles only on a terminal, and not when NO_COLOR is set (https://no-color.org) or TERM is `dumb`. */
export const styleFor = (output: Output): Style => ({
  color: output.isTTY && output.noColor === "" && output.term !== "dumb",
  width: output.isTTY && output.columns !== undefined && output.columns >= 40 ? Math.min(output.columns, 100) : 80
})

/** The style for standard output (see {@link styleFor}). */
export const stdoutStyle: Effect.Effect<Style> = Effect.gen(function*() {
  const noColor = yield* Config.string("NO_COLOR").pipe(Config.withDefault(""))
  const term = yield* Config.string("TERM").pipe(Config.withDefault(""))
  const stdout = yield* Effect.sync(() => ({ isTTY: process.stdout.isTTY === true, columns: process.stdout.columns }))
  return styleFor({ ...stdout, noColor, term })
}).pipe(Effect.orElseSucceed(() => plain))

/** What a command line is called and says besides its options. */
export interface Info {
  /** The name users type: `update-self`, `update-repo keygen`. */
  readonly name: string
  readonly version: string
  /** Text after the options, such as the exit statuses. */
  readonly footer?: HelpDoc.HelpDoc | undefined
}

/** One flag or argument of a usage line. */
export interface Item {
  /** The flag's names (`--target`), or the argument's (`binary`). */
  readonly names: ReadonlyArray<string>
  /** What follows the flag (`FILE`, `bz2 | gzip | none`); none for a switch. */
  readonly value: Option.Option<string>
  readonly required: boolean
  readonly repeated: boolean
}

/** True for an item that is a flag rather than a positional argument. */
export const isFlag = (item: Item): boolean => item.names.some((name) => name.startsWith("-"))

/** How an item is written: `--target FILE`, `<binary>`. */
export const itemText = (item: Item): string => {
  if (!isFlag(item)) {
    const name = item.names[0] ?? "argument"
    return name.startsWith("<") ? name : `<${name}>`
  }
  const name = item.names.find((n) => n.startsWith("--")) ?? item.names[0] ?? ""
  return Option.match(item.value, { onNone: () => name, onSome: (value) => `${name} ${value}` })
}

/**
 * The ways a command line can be written: one list of items per alternative
 * (`--repo ... | --omaha ...` gives two), without the command's own name.
 */
export const alternatives = (usage: Usage.Usage): Array<Array<Item>> => {
  const walk = (u: Usage.Usage, required: boolean, repeated: boolean): Array<Array<Item>> => {
    switch (u._tag) {
      case "Empty":
      case "Mixed":
        return [[]]
      case "Named":
        return [[{ names: u.names, value: u.acceptedValues, required, repeated }]]
      case "Optional":
        return walk(u.usage, false, repeated)
      case "Repeated":
        // A repeated flag may be left out (Options.repeated takes zero or more).
        return walk(u.usage, false, true)
      case "Alternation":
        return [...walk(u.left, required, repeated), ...walk(u.right, required, repeated)]
      case "Concat": {
        const right = walk(u.right, required, repeated)
        return walk(u.left, required, repeated).flatMap((l) => right.map((r) => [...l, ...r]))
      }
    }
  }
  // A command's usage starts with its name.
  return walk(usage, true, false).map((items) => items.slice(1))
}

/** The usage lines: the command, its required flags, `[options]` for the rest, then its arguments. */
export const usageLines = (command: CommandDescriptor.Command<unknown>, name: string): Array<string> =>
  alternatives(CommandDescriptor.getUsage(command)).map((items) => {
    const flags = items.filter(isFlag)
    const args = items.filter((item) => !isFlag(item))
    const optional = flags.some((item) => !item.required)
    return [
      name,
      ...flags.filter((item) => item.required).map(itemText),
      ...(optional ? ["[options]"] : []),
      ...args.map((item) => (item.required ? itemText(item) : `[${itemText(item)}]`) + (item.repeated ? "..." : ""))
    ].join(" ")
  })

/** The sentences @effect/cli opens every option with, which say nothing about the option itself. */
const generic = new Set([
  "A user-defined piece of text.",
  "A user-defined piece of text that is confidential.",
  "A true or false value.",
  "An integer.",
  "A floating point number.",
  "A date without a time-zone in the ISO-8601 format, such as 2007-12-03T10:15:30.",
  "An existing file or directory.",
  "An existing file.",
  "An existing directory.",
  "A file or directory that must not exist.",
  "A file that must not exist.",
  "A directory that must not exist.",
  "A file or directory.",
  "A file.",
  "A directory.",
  // The usage line's brackets say so; a default is said by the option's own description.
  "This setting is optional."
])
const isGeneric = (text: string) => generic.has(text) || text.startsWith("One of the following: ")

const bold = (style: Style, text: string) => (style.color ? `\u001b[1m${text}\u001b[0m` : text)

/** A span as text (styles are applied per line, never inside one). */
export const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Weak":
    case "Strong":
    case "Highlight":
      return spanText(span.value)
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
  }
}

/**
 * Words wrapped to `width`, each line indented. Continuation lines line up
 * under the text of a `term  text` line (two spaces or more after its first
 * word), and otherwise under its start, `hang` further in; a line that fits
 * is kept as it is.
 */
const wrap = (text: string, indent: number, width: number, hang = 0): Array<string> =>
  text.split("\n").flatMap((line) => {
    const pad = " ".repeat(indent)
    if (indent + line.length <= width) return [pad + line]
    const term = /^\s*\S+ {2,}/.exec(line)?.[0]
    const head = term ?? /^\s*/.exec(line)?.[0] ?? ""
    const next = " ".repeat(head.length + (term === undefined ? hang : 0))
    const lines: Array<string> = []
    let current = ""
    for (const word of line.slice(head.length).split(/\s+/)) {
      const start = lines.length === 0 ? head : next
      if (current !== "" && indent + start.length + current.length + 1 + word.length > width) {
        lines.push(pad + start + current)
        current = word
      } else {
        current = current === "" ? word : `${current} ${word}`
      }
    }
    lines.push(pad + (lines.length === 0 ? head : next) + current)
    return lines
  })

/** Lines of a help document; headers at the margin, everything else under them. */
const docLines = (doc: HelpDoc.HelpDoc, indent: number, style: Style): Array<string> => {
  switch (doc._tag) {
    case "Empty":
      return []
    case "Header":
      return ["", bold(style, spanText(doc.value))]
    case "Paragraph": {
      const text = spanText(doc.value)
      return isGeneric(text) ? [] : wrap(text, indent, style.width)
    }
    case "DescriptionList":
      return doc.definitions.flatMap(([term, body]) => [
        " ".repeat(indent) + bold(style, spanText(term)),
        ...docLines(body, indent + 4, style)
      ])
    case "Enumeration":
      return doc.elements.flatMap((element) =>
        docLines(element, indent + 2, style).map((line, i) => (i === 0 ? `${" ".repeat(indent)}- ${line.trimStart()}` : line))
      )
    case "Sequence":
      return [...docLines(doc.left, indent, style), ...docLines(doc.right, indent, style)]
  }
}

/** The whole `--help` text of a command, ending in a newline. */
export const render = (command: CommandDescriptor.Command<unknown>, info: Info, style: Style): string => {
  const lines = [
    bold(style, `${info.name} ${info.version}`),
    "",
    bold(style, "USAGE"),
    ...usageLines(command, info.name).flatMap((line) => wrap(line, 2, style.width, 4)),
    ...docLines(CommandDescriptor.getHelp(command, CliConfig.defaultConfig), 2, style),
    ...(info.footer === undefined ? [] : docLines(info.footer, 2, style))
  ]
  return lines.join("\n") + "\n"
}
