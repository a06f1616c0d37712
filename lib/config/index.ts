/**
 * Configuration: every environment variable in one spec (./spec.ts), read
 * through it by one function per concern (./readers.ts), documented from it
 * (./docs.ts → docs/configuration.md).
 */
export * from "./readers";
export * from "./node";
export {
  ENV,
  ENV_VARS,
  GROUPS,
  BALANCER_MODES,
  CONVERT_OUTTYPES,
  LOG_LEVELS,
  type ConfigGroup,
  type EnvVar,
} from "./spec";
export { expandHome, InvalidValue, type Parser } from "./parsers";
export { configMarkdown, CONFIG_DOC_COMMAND, CONFIG_DOC_PATH } from "./docs";
