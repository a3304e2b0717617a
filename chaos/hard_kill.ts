export async function runHardKill(_: unknown): Promise<never> {
  throw new Error("todo");
}
