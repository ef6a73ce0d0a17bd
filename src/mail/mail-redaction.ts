// Cuts mail addresses, SMTP URLs and send errors down to what the logs and
// mail_outbox.last_error may contain.

// Maximum length of the error text stored in mail_outbox.last_error.
const MAX_ERROR_LENGTH = 1_000;

/** Returns the domain of an address, which is all of it that the logs may show. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

// Matches the local part of an address and its @, for masking addresses in
// SMTP replies such as "550 5.1.1 <alice@example.com>: mailbox unavailable".
const LOCAL_PART = /[^\s<>()[\]\\,;:"'@]+@/g;

function maskAddresses(text: string): string {
  return text.replace(LOCAL_PART, '[redacted]@');
}

/**
 * Returns the parts of a send error that are safe to log. nodemailer's errors
 * carry the recipients and the server's reply, which can contain the full
 * address, so only these fields are kept, with addresses masked.
 */
export function describeSendError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: maskAddresses(String(error)) };
  const smtp = error as Error & { code?: string; responseCode?: number; command?: string };
  return {
    type: smtp.name,
    message: maskAddresses(smtp.message),
    code: smtp.code,
    responseCode: smtp.responseCode,
    command: smtp.command === undefined ? undefined : maskAddresses(smtp.command),
  };
}

/** Returns the error text for mail_outbox.last_error, unmasked, because that row contains the address anyway. */
export function storedErrorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.slice(0, MAX_ERROR_LENGTH);
}

/** Returns host and port of an SMTP URL, without its credentials. */
export function smtpEndpoint(smtpUrl: string): string {
  const url = new URL(smtpUrl);
  return `${url.protocol}//${url.host}`;
}
