/** Wrong use of the command line: exit code 2. */
export class UsageError extends Error {}

/** Anything else that went wrong: exit code 1, one line on stderr. */
export class CliError extends Error {}
