import 'reflect-metadata';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { MikroORM, ReferenceKind } from '@mikro-orm/postgresql';
import { MIGRATIONS } from '../../src/database/migrations';
import { ormOptions } from '../../src/database/orm-options';
import {
  databaseUrl,
  TEST_SERVER_URL_ENV,
  TEST_TEMPLATE_ENV,
  withClient,
} from '../support/test-database';

const MIGRATIONS_DIR = path.join(__dirname, '../../src/database/migrations');

let orm: MikroORM;
let serverUrl: string;
let name: string;

// A database of its own, left empty: the template of the other tests is migrated already.
beforeAll(async () => {
  serverUrl = process.env[TEST_SERVER_URL_ENV]!;
  name = `${process.env[TEST_TEMPLATE_ENV]!.replace('_template', '')}_${process.pid}_fresh`;
  await withClient(serverUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  });
  orm = await MikroORM.init(ormOptions({ databaseUrl: databaseUrl(serverUrl, name), poolMax: 2 }));
});
afterAll(async () => {
  await orm.close();
  await withClient(serverUrl, (client) =>
    client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`),
  );
});

async function columns(): Promise<Map<string, { nullable: boolean }>> {
  const rows = await orm.em
    .getConnection()
    .execute<Array<{ table_name: string; column_name: string; is_nullable: string }>>(
      `SELECT table_name, column_name, is_nullable FROM information_schema.columns
      WHERE table_schema = 'public'`,
    );
  return new Map(
    rows.map((row) => [
      `${row.table_name}.${row.column_name}`,
      { nullable: row.is_nullable === 'YES' },
    ]),
  );
}

describe('migrations', () => {
  test('list every file in order', async () => {
    const files = (await readdir(MIGRATIONS_DIR))
      .filter((file) => file.endsWith('.ts'))
      .map((file) => file.replace(/\.ts$/, ''))
      .sort();

    expect(MIGRATIONS.map((migration) => migration.name)).toEqual(files);
  });

  test('create every column the entities map', async () => {
    await orm.getMigrator().up();
    const existing = await columns();

    const mismatches: string[] = [];
    let checked = 0;
    for (const meta of Object.values(orm.getMetadata().getAll())) {
      if (meta.embeddable || meta.virtual) continue;
      for (const property of meta.props) {
        const stored =
          property.kind === ReferenceKind.SCALAR || property.kind === ReferenceKind.MANY_TO_ONE;
        if (!stored || property.persist === false) continue;
        for (const field of property.fieldNames) {
          checked++;
          const column = existing.get(`${meta.tableName}.${field}`);
          if (!column) mismatches.push(`${meta.tableName}.${field} is missing`);
          else if (column.nullable !== Boolean(property.nullable)) {
            mismatches.push(
              `${meta.tableName}.${field} is ${column.nullable ? '' : 'NOT '}NULL in the database`,
            );
          }
        }
      }
    }
    expect(mismatches).toEqual([]);
    expect(checked).toBeGreaterThan(50);
  });

  test('go down and up again', async () => {
    const before = await columns();

    await orm.getMigrator().down({ to: 0 });
    const emptied = await columns();
    await orm.getMigrator().up();
    const after = await columns();

    expect([...emptied.keys()].filter((key) => !key.startsWith('mikro_orm_migrations.'))).toEqual(
      [],
    );
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
  });
});
