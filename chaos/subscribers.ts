export async function runSubscribers(_: unknown): Promise<never> {
  throw new Error("todo");
}
