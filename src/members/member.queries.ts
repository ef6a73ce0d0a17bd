import type { Sql } from '../database/sql';
import type { MemberRole } from './session.service';

/** A member row as the sign-in and security code needs it. */
export interface MemberRecord {
  id: string;
  email: string;
  username: string;
  passwordHash: string;
  role: MemberRole;
  emailVerified: boolean;
  twoFactorEnabled: boolean;
  createdAt: Date;
}

interface MemberRow {
  id: string;
  email: string;
  username: string;
  password_hash: string;
  role: MemberRole;
  email_verified_at: string | null;
  totp_enabled_at: string | null;
  created_at: string;
}

const COLUMNS =
  'id, email, username, password_hash, role, email_verified_at, totp_enabled_at, created_at';

function readMember(row: MemberRow): MemberRecord {
  return {
    id: row.id,
    email: row.email,
    username: row.username,
    passwordHash: row.password_hash,
    role: row.role,
    emailVerified: row.email_verified_at !== null,
    twoFactorEnabled: row.totp_enabled_at !== null,
    createdAt: new Date(row.created_at),
  };
}

/** Finds an active member by id. `forUpdate` locks the row for the rest of the database transaction. */
export async function findMemberById(
  sql: Sql,
  memberId: string,
  forUpdate = false,
): Promise<MemberRecord | undefined> {
  const row = await sql.one<MemberRow>(
    `SELECT ${COLUMNS} FROM member WHERE id = ? AND status = 'active'${forUpdate ? ' FOR UPDATE' : ''}`,
    [memberId],
  );
  return row && readMember(row);
}

/**
 * Returns the form in which a username or address is compared and counted:
 * trimmed and lower-cased in JavaScript. Usernames and addresses are ASCII,
 * and for ASCII this agrees with Postgres lower(). Lower-casing non-ASCII
 * input in the database instead would let "İris" match "iris" while the
 * rate limits counted it as another name.
 */
export function normaliseLogin(login: string): string {
  return login.trim().toLowerCase();
}

/**
 * Finds an active member by username or e-mail address, compared without
 * case. Usernames cannot contain "@", so the form of `login` decides which.
 */
export async function findMemberByLogin(
  sql: Sql,
  login: string,
): Promise<MemberRecord | undefined> {
  const column = login.includes('@') ? 'email' : 'username';
  const row = await sql.one<MemberRow>(
    `SELECT ${COLUMNS} FROM member WHERE lower(${column}) = ? AND status = 'active'`,
    [normaliseLogin(login)],
  );
  return row && readMember(row);
}

export async function findMemberByEmail(
  sql: Sql,
  email: string,
): Promise<MemberRecord | undefined> {
  const row = await sql.one<MemberRow>(
    `SELECT ${COLUMNS} FROM member WHERE lower(email) = ? AND status = 'active'`,
    [normaliseLogin(email)],
  );
  return row && readMember(row);
}
