/** Every kind of mail the server sends; stored in `mail_outbox.kind`. */
export const MAIL_KINDS = [
  'email_verification',
  'already_registered',
  'username_taken',
  'password_reset',
  'username_reminder',
  'password_changed',
  'withdrawal',
] as const;

export type MailKind = (typeof MAIL_KINDS)[number];

/** A plain-text mail to one recipient, as it is stored in the outbox. */
export interface OutgoingMail {
  kind: MailKind;
  to: string;
  subject: string;
  text: string;
}

const PRODUCT = 'Prepaid Wallet';

/** Formats a time as "2026-12-04 18:00 UTC", so that no reader has to guess the time zone. */
function formatUtc(time: Date): string {
  const iso = time.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

function linkWithToken(appUrl: string, path: string, token: string): string {
  return `${appUrl}${path}?token=${encodeURIComponent(token)}`;
}

function lines(...paragraphs: string[]): string {
  return `${paragraphs.join('\n\n')}\n`;
}

export function verificationMail(
  to: string,
  username: string,
  token: string,
  appUrl: string,
  expiresAt: Date,
): OutgoingMail {
  return {
    kind: 'email_verification',
    to,
    subject: `Verify your email address for ${PRODUCT}`,
    text: lines(
      `Hello ${username},`,
      `To finish creating your ${PRODUCT} account, verify your email address by opening this link:`,
      linkWithToken(appUrl, '/verify-email', token),
      `If the link does not open, enter this code in the app instead:\n${token}`,
      `The link and the code expire at ${formatUtc(expiresAt)}.`,
      `If you did not create an account, ignore this mail.`,
    ),
  };
}

export function alreadyRegisteredMail(to: string): OutgoingMail {
  return {
    kind: 'already_registered',
    to,
    subject: `Someone tried to register with your email address`,
    text: lines(
      `Hello,`,
      `Someone tried to create a ${PRODUCT} account with this email address, but this address already has an account.`,
      `If it was you, sign in with your username and password. If you forgot your password, reset it from the sign-in page.`,
      `If it was not you, ignore this mail. Nothing has changed on your account.`,
    ),
  };
}

/**
 * Builds the mail for a new address whose requested username was taken, so
 * that the API returns the same response whether or not the username is free.
 */
export function usernameTakenMail(to: string, username: string): OutgoingMail {
  return {
    kind: 'username_taken',
    to,
    subject: `Choose another username for ${PRODUCT}`,
    text: lines(
      `Hello,`,
      `Someone, probably you, tried to create a ${PRODUCT} account with this email address and the username "${username}".`,
      `That username is already taken, so no account was created. Register again with another username.`,
      `If it was not you, ignore this mail.`,
    ),
  };
}

export function passwordResetMail(
  to: string,
  token: string,
  appUrl: string,
  expiresAt: Date,
): OutgoingMail {
  return {
    kind: 'password_reset',
    to,
    subject: `Reset your ${PRODUCT} password`,
    text: lines(
      `Hello,`,
      `To choose a new password for your ${PRODUCT} account, open this link:`,
      linkWithToken(appUrl, '/reset-password', token),
      `If the link does not open, enter this code in the app instead:\n${token}`,
      `The link and the code work once and expire at ${formatUtc(expiresAt)}.`,
      `If you did not request a password reset, ignore this mail. Your password stays unchanged.`,
    ),
  };
}

export function usernameReminderMail(to: string, username: string): OutgoingMail {
  return {
    kind: 'username_reminder',
    to,
    subject: `Your ${PRODUCT} username`,
    text: lines(
      `Hello,`,
      `You requested the username of the ${PRODUCT} account registered with this email address. Your username is:\n${username}`,
      `If you did not request it, ignore this mail.`,
    ),
  };
}

export function passwordChangedMail(to: string): OutgoingMail {
  return {
    kind: 'password_changed',
    to,
    subject: `Your ${PRODUCT} password was changed`,
    text: lines(
      `Hello,`,
      `The password of your ${PRODUCT} account was changed, and all other sessions of your account were signed out.`,
      `If you changed it, there is nothing more to do.`,
      `If you did not change it, someone else may have access to your account. Reset your password from the sign-in page at once.`,
    ),
  };
}

export function withdrawalMail(to: string, forfeitedPoints: number): OutgoingMail {
  const points = `${forfeitedPoints.toLocaleString('en-US')} ${forfeitedPoints === 1 ? 'point' : 'points'}`;
  return {
    kind: 'withdrawal',
    to,
    subject: `Your ${PRODUCT} account is closed`,
    text: lines(
      `Hello,`,
      `Your ${PRODUCT} account is closed. The remaining balance of ${points} was forfeited.`,
      `You can no longer sign in to this account.`,
    ),
  };
}
