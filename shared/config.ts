/**
 * Configuration files: JSON with comments, validated against a per-server schema.
 *
 * One schema per server lists every key with its type, default and meaning. The same schema
 * validates a file, fills in defaults, and generates the README's reference tables, so the
 * documentation cannot drift from the code.
 *
 * @module
 */
import { parse, type ParseError, printParseErrorCode } from "jsonc-parser";
import { isAbsolute, resolve } from "node:path";

/** The value types a config key may hold. */
export type KeyType = "string" | "boolean" | "integer" | "number" | "string[]" | "string{}";

/** One key of a schema. */
export interface KeySpec {
  readonly type: KeyType;
  /** Meaning, one sentence, shown in the README. */
  readonly doc: string;
  /** Default when absent. */
  readonly default?: unknown;
  /** Computes the default from the environment and the keys listed before this one. */
  readonly computeDefault?: (env: ConfigEnv, earlier: Readonly<Record<string, unknown>>) => unknown;
  readonly required?: boolean;
  /** A path: relative values resolve against the project root. */
  readonly path?: boolean;
  /** Smallest allowed value for numbers. */
  readonly min?: number;
  /** Largest allowed value for numbers. */
  readonly max?: number;
  /** Allowed values for strings. */
  readonly oneOf?: readonly string[];
  /** Another key that must be set exactly when this one is. */
  readonly together?: string;
  /** Kept only so that reference configs still load; has no effect. */
  readonly ignored?: boolean;
  /** The README shows this instead of the computed default. */
  readonly defaultDoc?: string;
}

/** A schema: key name → spec. */
export type Schema = Readonly<Record<string, KeySpec>>;

/** What defaults may depend on. */
export interface ConfigEnv {
  /** Project root; relative paths resolve against it. */
  readonly root: string;
  /** Environment variables that defaults may read (e.g. WEBOTS_HOME). */
  readonly vars: Readonly<Record<string, string | undefined>>;
  /** The system temp folder. */
  readonly tmpDir: string;
}

type ValueOf<T extends KeyType> = T extends "string" ? string
  : T extends "boolean" ? boolean
  : T extends "integer" | "number" ? number
  : T extends "string{}" ? Record<string, string>
  : string[];

type HasValue = { required: true } | { default: unknown } | { computeDefault: unknown };

/** The typed config a schema describes; keys without default nor `required` may be undefined. */
export type ConfigOf<S extends Schema> =
  & {
    -readonly [K in keyof S as S[K] extends HasValue ? K : never]: ValueOf<S[K]["type"]>;
  }
  & {
    -readonly [K in keyof S as S[K] extends HasValue ? never : K]?: ValueOf<S[K]["type"]>;
  };

/** A config file could not be used; the message is one line naming the file and the key. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

function typeMatches(type: KeyType, value: unknown): boolean {
  switch (type) {
    case "string":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "string[]":
      return Array.isArray(value) && value.every((v) => typeof v === "string");
    case "string{}":
      return typeof value === "object" && value !== null && !Array.isArray(value) &&
        Object.values(value).every((v) => typeof v === "string");
  }
}

const TYPE_NAMES: Record<KeyType, string> = {
  string: "a string",
  boolean: "true or false",
  integer: "an integer",
  number: "a number",
  "string[]": "an array of strings",
  "string{}": "an object of strings",
};

/** Parses JSON-with-comments text into a plain object, or throws a ConfigError naming `file`. */
export function parseJsonc(text: string, file: string): Record<string, unknown> {
  const errors: ParseError[] = [];
  const value = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  const first = errors[0];
  if (first) {
    const line = text.slice(0, first.offset).split("\n").length;
    throw new ConfigError(`${file}: ${printParseErrorCode(first.error)} at line ${line}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(`${file}: the file must hold one JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * Validates `raw` against `schema`, fills defaults and resolves paths.
 * Throws a ConfigError on the first unknown key, wrong type or missing required key.
 */
export function validateConfig<S extends Schema>(
  schema: S,
  raw: Record<string, unknown>,
  file: string,
  env: ConfigEnv,
): ConfigOf<S> {
  for (const key of Object.keys(raw)) {
    if (!Object.hasOwn(schema, key)) {
      throw new ConfigError(`${file}: unknown key "${key}"`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(schema)) {
    let value = raw[key];
    if (value === undefined || value === null) {
      if (spec.required) throw new ConfigError(`${file}: missing required key "${key}"`);
      value = spec.computeDefault ? spec.computeDefault(env, out) : spec.default;
      if (value === undefined) continue;
    } else {
      if (!typeMatches(spec.type, value)) {
        throw new ConfigError(`${file}: key "${key}" must be ${TYPE_NAMES[spec.type]}`);
      }
      if (typeof value === "number") {
        if (spec.min !== undefined && value < spec.min) {
          throw new ConfigError(`${file}: key "${key}" must be at least ${spec.min}`);
        }
        if (spec.max !== undefined && value > spec.max) {
          throw new ConfigError(`${file}: key "${key}" must be at most ${spec.max}`);
        }
      }
      if (spec.oneOf && !spec.oneOf.includes(value as string)) {
        throw new ConfigError(
          `${file}: key "${key}" must be one of ${spec.oneOf.map((v) => `"${v}"`).join(", ")}`,
        );
      }
    }
    if (spec.together && (raw[spec.together] === undefined || raw[spec.together] === null)) {
      throw new ConfigError(`${file}: key "${key}" needs key "${spec.together}" as well`);
    }
    if (spec.ignored) continue;
    if (spec.path && typeof value === "string") value = resolvePath(value, env);
    if (spec.path && spec.type === "string{}") {
      const entries = Object.entries(value as Record<string, string>);
      value = Object.fromEntries(entries.map(([k, v]) => [k, resolvePath(v, env)]));
    }
    out[key] = value;
  }
  return out as ConfigOf<S>;
}

/** Expands `~` and `$VAR` like the reference (os.path.expanduser/expandvars), then resolves. */
export function resolvePath(value: string, env: ConfigEnv): string {
  let p = value.replace(/^~(?=$|\/)/, env.vars.HOME ?? "~");
  p = p.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (m, name: string) => env.vars[name] ?? m);
  return isAbsolute(p) ? resolve(p) : resolve(env.root, p);
}

/**
 * The environment config defaults are computed from: `HOME` (for `~`), `TMPDIR`, and the extra
 * variables a server's schema reads.
 */
export function processConfigEnv(root: string, extraVars: readonly string[] = []): ConfigEnv {
  const vars: Record<string, string | undefined> = {};
  for (const name of ["HOME", ...extraVars]) vars[name] = Deno.env.get(name);
  return { root, vars, tmpDir: Deno.env.get("TMPDIR") || "/tmp" };
}

/** Reads, parses and validates a config file. */
export async function loadConfig<S extends Schema>(
  schema: S,
  file: string,
  env: ConfigEnv,
): Promise<ConfigOf<S>> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound ? "no such file" : String(error);
    throw new ConfigError(`${file}: cannot read the config file: ${reason}`, { cause: error });
  }
  return validateConfig(schema, parseJsonc(text, file), file, env);
}

/** Renders a schema as a Markdown table for the README. */
export function schemaTable(schema: Schema): string {
  const rows = ["| key | type | default | meaning |", "|---|---|---|---|"];
  for (const [key, spec] of Object.entries(schema)) {
    const def = spec.defaultDoc ??
      (spec.required
        ? "required"
        : spec.default === undefined
        ? "—"
        : `\`${JSON.stringify(spec.default)}\``);
    const meaning = spec.ignored ? `${spec.doc} (accepted and ignored)` : spec.doc;
    rows.push(`| \`${key}\` | ${spec.type} | ${def} | ${meaning.replaceAll("|", "\\|")} |`);
  }
  return rows.join("\n");
}
