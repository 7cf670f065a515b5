/** One-line messages from whatever a driver or the runtime threw. */

/** The message of a thrown value on one line; an AggregateError (a connection tried on several addresses) lists its parts. */
export const messageOf = (cause: unknown): string => {
  const text = cause instanceof AggregateError && cause.message === ""
    ? cause.errors.map(messageOf).join("; ")
    : cause instanceof Error
    ? cause.message || cause.name
    : String(cause)
  return text.replace(/\s*\n\s*/g, " ")
}

/** The messages of an error and its causes, outermost first, each once: "what failed: why". */
export const reasonOf = (error: unknown): string => {
  const messages: Array<string> = []
  for (let current = error, depth = 0; current !== undefined && current !== null && depth < 6; depth++) {
    const message = typeof current === "object" && "message" in current ? messageOf(current) : String(current)
    if (message !== "" && !messages.includes(message)) messages.push(message)
    current = typeof current === "object" && "cause" in current ? (current as { readonly cause?: unknown }).cause : undefined
  }
  return messages.join(": ")
}
