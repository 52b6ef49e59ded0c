/** Throw for states that cannot happen; the message says which. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`weightwidget: ${message}`);
}
