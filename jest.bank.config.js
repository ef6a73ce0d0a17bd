/** The bank test (npm run test:bank): the main jest setup, for tests/bank only, one file at a time. */
const base = require('./jest.config');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testPathIgnorePatterns: ['/node_modules/'],
  roots: ['<rootDir>/tests/bank'],
  maxWorkers: 1,
};
