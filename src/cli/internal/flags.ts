/** Option builders shared by the commands, for what @effect/cli's own leave out. */
import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { Effect } from "effect"

/**
 * `Options.withDefault` that also says the default in `--help` (@effect/cli
 * 0.77 prints "This setting is optional." and never the value). `shown` is
 * how the help writes it, `String(fallback)` unless given.
 */
export const withDefault = <const B>(fallback: B, shown: string = String(fallback)) =>
<A>(self: Options.Options<A>): Options.Options<A | B> =>
  Options.withDefault(Options.withDescription(self, `default: ${shown}`), fallback)

/** An integer flag that refuses values below `min` as a usage error naming the flag. */
export const integerAtLeast = (name: string, min: number): Options.Options<number> =>
  Options.integer(name).pipe(
    Options.mapEffect((value) =>
      value >= min
        ? Effect.succeed(value)
        : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name} must be at least ${min}, not ${value}`)))
    )
  )
