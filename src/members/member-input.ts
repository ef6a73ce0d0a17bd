import { badUserInput } from '../graphql/errors';
import { hasLoneSurrogate } from '../merchants/payment.validation';

const EMAIL_MAX_LENGTH = 254;
const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$/;

/**
 * Returns the address trimmed, or throws BAD_USER_INPUT. The check is
 * deliberately loose: the verification mail is the real test of an address.
 */
export function checkEmail(email: string): string {
  const trimmed = email.trim();
  if (
    trimmed.length > EMAIL_MAX_LENGTH ||
    !/^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:".]{2,}$/.test(trimmed) ||
    // ASCII only: comparisons and rate-limit keys lower-case addresses, and
    // Unicode case mapping would make two spellings of one address.
    !/^[\x21-\x7e]+$/.test(trimmed)
  ) {
    throw badUserInput('email must be an ASCII e-mail address such as name@example.com', 'email');
  }
  return trimmed;
}

/** Throws BAD_USER_INPUT unless the username is 3 to 32 letters, digits, ".", "_" or "-", starting with a letter or digit. */
export function checkUsername(username: string): string {
  if (!USERNAME_PATTERN.test(username)) {
    throw badUserInput(
      'username must be 3 to 32 characters: letters, digits, ".", "_" or "-", starting with a letter or digit',
      'username',
    );
  }
  return username;
}

/** Throws BAD_USER_INPUT for a login that can be neither a username nor an address. */
export function checkLogin(login: string): string {
  const trimmed = login.trim();
  if (trimmed.length < 1 || trimmed.length > EMAIL_MAX_LENGTH || /[\x00-\x1f\x7f]/.test(trimmed)) {
    throw badUserInput('login must be a username or an e-mail address', 'login');
  }
  return trimmed;
}

/** Throws BAD_USER_INPUT for an empty or absurdly long password before any hashing. */
export function checkPasswordShape(password: string, field = 'password'): void {
  if (password.length === 0 || password.length > 1_024) {
    throw badUserInput(`${field} must be 1 to 1024 characters`, field);
  }
  // UTF-8 cannot encode half a surrogate pair, so hashing would replace it
  // and two different inputs would become one password.
  if (hasLoneSurrogate(password) || password.includes('\u0000')) {
    throw badUserInput(`${field} must be well-formed text without NUL characters`, field);
  }
}
