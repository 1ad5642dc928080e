// A command-line usage error: exit code 2 and the message on stderr.
export class UsageError extends Error {
  override name = 'UsageError'
}
