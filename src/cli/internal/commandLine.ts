/**
 * Parsing a command line the way every command of this package does:
 * `--help` (see `help.ts`) and `--log-level` anywhere on the line, `--wizard`
 * only with a terminal to ask on, and any mistake in the flags one
 * {@link UsageError} line (`missing --target FILE; see update-self --help`)
 * rather than @effect/cli's report, which prints each alternative it tried on
 * lines of its own.
 */
import { type CliApp, CliConfig, Command, CommandDescriptor, type HelpDoc, ValidationError } from "@effect/cli"
import { Console, Effect, Logger, LogLevel, Option, Schema } from "effect"
import * as Help from "./help.js"

/** The command line cannot be run: a missing or unknown flag, a value that does not parse. */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  /** The command as users type it, for the pointer to its help. */
  command: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.reason}; see ${this.command} --help`
  }
}

const logLevels = ["all", "trace", "debug", "info", "warning", "error", "fatal", "none"] as const

/** The arguments a user typed: flags, then `--` and what follows it, untouched. */
const split = (args: ReadonlyArray<string>): readonly [ReadonlyArray<string>, ReadonlyArray<string>] => {
  const end = args.indexOf("--")
  return end === -1 ? [args, []] : [args.slice(0, end), args.slice(end)]
}

/** `--log-level L` (or `--log-level=L`) taken out of the flags, wherever it stands. */
const takeLogLevel = (
  args: ReadonlyArray<string>,
  name: string
): Effect.Effect<{ readonly args: ReadonlyArray<string>; readonly level: Option.Option<LogLevel.LogLevel> }, UsageError> =>
  Effect.suspend(() => {
    const [flags, rest] = split(args)
    const kept: Array<string> = []
    let given: string | undefined = undefined
    for (let i = 0; i < flags.length; i++) {
      const arg = flags[i]!
      if (arg === "--log-level") {
        given = flags[i + 1] ?? ""
        i++
      } else if (arg.startsWith("--log-level=")) {
        given = arg.slice("--log-level=".length)
      } else {
        kept.push(arg)
      }
    }
    if (given === undefined) return Effect.succeed({ args: [...kept, ...rest], level: Option.none() })
    const literal = logLevels.find((level) => level === given.toLowerCase())
    if (literal === undefined) {
      return Effect.fail(
        new UsageError({
          command: name,
          reason: given === "" ? "--log-level needs a value" : `--log-level: '${given}' is not one of ${logLevels.join(", ")}`
        })
      )
    }
    const level = LogLevel.fromLiteral((literal.charAt(0).toUpperCase() + literal.slice(1)) as LogLevel.Literal)
    return Effect.succeed({ args: [...kept, ...rest], level: Option.some(level) })
  })

/** The text of a help document's paragraphs, one entry per line. */
const textLines = (doc: HelpDoc.HelpDoc): Array<string> => {
  switch (doc._tag) {
    case "Paragraph":
      return Help.spanText(doc.value).split("\n")
    case "Header":
      return [Help.spanText(doc.value)]
    case "DescriptionList":
      return doc.definitions.flatMap(([term, body]) => [Help.spanText(term), ...textLines(body)])
    case "Enumeration":
      return doc.elements.flatMap(textLines)
    case "Sequence":
      return [...textLines(doc.left), ...textLines(doc.right)]
    case "Empty":
      return []
  }
}

/** The flags a user typed, by name (`--target`, `--check-timeout=5` counts as `--check-timeout`). */
const typedFlags = (args: ReadonlyArray<string>): Set<string> =>
  new Set(split(args)[0].filter((arg) => arg.startsWith("-")).map((arg) => arg.split("=", 1)[0]!))

/** The value typed for a flag: `--name value` or `--name=value`. */
const typedValue = (args: ReadonlyArray<string>, name: string): string | undefined => {
  const [flags] = split(args)
  for (let i = 0; i < flags.length; i++) {
    if (flags[i] === name) return flags[i + 1]
    if (flags[i]!.startsWith(`${name}=`)) return flags[i]!.slice(name.length + 1)
  }
  return undefined
}

const quoted = (name: string) => name.replace(/^'|'$/g, "")

/**
 * One line saying what is wrong with a command line, from @effect/cli's
 * report: which flag is missing (of the alternative the typed flags point
 * to), which is unknown, which value does not parse and for which flag.
 */
export const describeValidationError = (
  error: ValidationError.ValidationError,
  command: CommandDescriptor.Command<unknown>,
  args: ReadonlyArray<string>
): string => {
  const lines = textLines(error.error).map((line) => line.trim()).filter((line) => line !== "")
  if (ValidationError.isMultipleValuesDetected(error)) lines.push(`a flag was given more than once (${error.values.join(", ")})`)
  const alternatives = Help.alternatives(CommandDescriptor.getUsage(command))
  const items = alternatives.flat()
  const typed = typedFlags(args)
  // @effect/cli reports a flag given twice as other flags missing; say what happened instead.
  const [flags] = split(args)
  const twice = items.find((item) =>
    Help.isFlag(item) && !item.repeated &&
    flags.filter((arg) => item.names.includes(arg.split("=", 1)[0]!)).length > 1
  )
  if (twice !== undefined) return `${Help.itemText({ ...twice, value: Option.none() })} is given more than once`
  const flagOf = (value: string) =>
    items.find((item) => Help.isFlag(item) && item.names.some((name) => typedValue(args, name) === value))
  const reasons = lines.map((line): { readonly missing?: string; readonly reason: string } => {
    let m: RegExpExecArray | null
    if ((m = /^Expected to find option: (.+)$/.exec(line)) !== null) {
      return { missing: quoted(m[1]!), reason: `missing ${quoted(m[1]!)}` }
    }
    if ((m = /^Missing argument (.+?)(?: with choices .*)?$/.exec(line)) !== null) return { reason: `missing ${m[1]}` }
    if ((m = /^Received unknown argument: (.+)$/.exec(line)) !== null) {
      const arg = quoted(m[1]!)
      return { reason: arg.startsWith("-") ? `unknown option ${arg}` : `unexpected argument '${arg}'` }
    }
    if ((m = /^The flag (.+) is not recognized\. Did you mean (.+)\?$/.exec(line)) !== null) {
      return { reason: `unknown option ${quoted(m[1]!)} (did you mean ${quoted(m[2]!)}?)` }
    }
    if ((m = /^'(.*)' is not a (.+)$/.exec(line)) !== null) {
      const kind = /^[aeiou]/.test(m[2]!) ? `an ${m[2]}` : `a ${m[2]}`
      const flag = flagOf(m[1]!)
      return { reason: `${flag === undefined ? "" : `${Help.itemText({ ...flag, value: Option.none() })}: `}'${m[1]}' is not ${kind}` }
    }
    if ((m = /^Expected one of the following cases: (.+)$/.exec(line)) !== null) {
      const cases = m[1]!.split(", ")
      const flag = items.find((item) => Option.getOrUndefined(item.value) === cases.join(" | "))
      const name = flag === undefined ? undefined : Help.itemText({ ...flag, value: Option.none() })
      const value = name === undefined ? undefined : typedValue(args, name)
      return {
        reason: name === undefined
          ? `expected one of ${cases.join(", ")}`
          : `${name}: '${value ?? ""}' is not one of ${cases.join(", ")}`
      }
    }
    if ((m = /^Expected a value following option: (.+)$/.exec(line)) !== null) return { reason: `${quoted(m[1]!)} needs a value` }
    if ((m = /^More than one reference to option (.+) detected$/.exec(line)) !== null) {
      return { reason: `${quoted(m[1]!)} is given more than once` }
    }
    if ((m = /^Collision between two options detected - you can only specify one of either: \[(.+)\]$/.exec(line)) !== null) {
      const groups = [...m[1]!.matchAll(/'([^']*)'/g)].map((g) => g[1]!.split(", ")[0])
      return { reason: `${groups.join(" and ")} cannot be used together` }
    }
    return { reason: line.charAt(0).toLowerCase() + line.slice(1) }
  })
  // A value typed wrong comes first; of the missing flags, the first the alternative the typed flags point to needs.
  const wrong = reasons.find((r) => r.missing === undefined && !r.reason.startsWith("missing "))
  if (wrong !== undefined) return wrong.reason
  const missing = reasons.find((r) => r.missing !== undefined)
  if (missing !== undefined) {
    const score = (alternative: ReadonlyArray<Help.Item>) =>
      alternative.filter((item) => item.names.some((name) => typed.has(name))).length
    const chosen = alternatives.reduce((best, next) => (score(next) > score(best) ? next : best), alternatives[0] ?? [])
    const needed = chosen.find((item) => item.required && Help.isFlag(item) && !item.names.some((name) => typed.has(name))) ??
      items.find((item) => item.names.includes(missing.missing!))
    return needed === undefined ? missing.reason : `missing ${Help.itemText(needed)}`
  }
  return reasons[0]?.reason ?? "invalid command line"
}

/** What is wrong with an argument the parser left over: a flag without its value, or one it does not know. */
const describeLeftover = (arg: string, command: CommandDescriptor.Command<unknown>, args: ReadonlyArray<string>): string => {
  if (!arg.startsWith("-")) return `unexpected argument '${arg}'`
  const name = arg.split("=", 1)[0]!
  const known = Help.alternatives(CommandDescriptor.getUsage(command)).flat().some((item) => item.names.includes(name))
  if (!known) return `unknown option ${arg}`
  return split(args)[0].filter((a) => a.split("=", 1)[0] === name).length > 1
    ? `${name} is given more than once`
    : `${name} needs a value`
}

/**
 * The program of `command` for `argv` (as `process.argv`); see the module
 * header. Help goes to stdout and the program then succeeds; every usage
 * mistake fails with a {@link UsageError}.
 */
export const run = <Name extends string, R, E, A>(command: Command.Command<Name, R, E, A>, info: Help.Info) =>
(
  argv: ReadonlyArray<string>
): Effect.Effect<void, E | UsageError, R | CliApp.CliApp.Environment> =>
  Effect.gen(function*() {
    const [node = "node", script = info.name] = argv
    const taken = yield* takeLogLevel(argv.slice(2), info.name)
    const args = taken.args
    const [flags] = split(args)
    if (flags.includes("--help") || flags.includes("-h")) {
      const style = yield* Help.stdoutStyle
      return yield* Console.log(Help.render(command.descriptor, info, style).replace(/\n$/, ""))
    }
    if (flags.includes("--wizard") && !(yield* Effect.sync(() => process.stdin.isTTY === true))) {
      return yield* new UsageError({ command: info.name, reason: "--wizard asks its questions on a terminal, and stdin is not one" })
    }
    const usage = (error: ValidationError.ValidationError) =>
      new UsageError({ command: info.name, reason: describeValidationError(error, command.descriptor, args) })
    // Checked first, so that @effect/cli's own report (several lines on stderr) is never printed.
    const descriptorName = [...CommandDescriptor.getNames(command.descriptor)][0] ?? info.name
    const directive = yield* CommandDescriptor.parse(command.descriptor, [descriptorName, ...args], CliConfig.defaultConfig)
      .pipe(Effect.mapError(usage))
    if (directive._tag === "UserDefined" && directive.leftover.length > 0) {
      return yield* new UsageError({ command: info.name, reason: describeLeftover(directive.leftover[0]!, command.descriptor, args) })
    }
    const program = Command.run(command, { name: info.name, version: info.version })([node, script, ...args]).pipe(
      Effect.mapError((error) => (ValidationError.isValidationError(error) ? usage(error) : error))
    )
    return yield* Option.match(taken.level, {
      onNone: () => program,
      onSome: (level) => Logger.withMinimumLogLevel(program, level)
    })
  })
