export async function runFleet(_: unknown): Promise<never> {
  throw new Error("todo");
}
