/**
 * docs/cli.md against commander's own definitions: every command is documented with every one of
 * its flags, and every flag the reference shows for a command exists on it. A flag added to a
 * command and not to the reference, or a documented flag that was renamed, fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from './program.ts';

const reference = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8');
/** The reference's sections (`## ` headings and what follows each). */
const sections = reference.split(/^## /m).slice(1);

/** Every command that runs something, as its path under `kvfold` (e.g. `models build`). */
function leaves(command: Command, path: string[] = []): { path: string; command: Command }[] {
  const subs = command.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
  if (subs.length === 0) return [{ path: path.join(' '), command }];
  // A command that runs something itself as well as through subcommands (`batches`, `batches recover`) is checked too.
  const own = path.length > 0 && command.options.length > 0 ? [{ path: path.join(' '), command }] : [];
  return [...own, ...subs.flatMap((c) => leaves(c, [...path, c.name()]))];
}

const commands = leaves(buildProgram());
const flagsOf = (c: Command): string[] => c.options.map((o) => o.long).filter((f): f is string => f !== undefined);
/** The sections that describe `path`: where `kvfold <path>` is written as a command. */
const sectionsOf = (path: string): string[] => sections.filter((s) => new RegExp(`\`kvfold ${path}(?![\\w-])`).test(s));
/** The text of a section that belongs to `path`: its own bullet in a list of commands, else all of it. */
function textOf(section: string, path: string): string {
  const bullets = section.split(/^- /m);
  const own = bullets.filter((b) => new RegExp(`^\`kvfold ${path}(?![\\w-])`).test(b));
  return own.length ? own.join('\n') : section;
}

/** A command's synopses in a section: the heading that names it, or the first line of its own bullet. */
function synopses(section: string, path: string): string[] {
  const named = new RegExp(`^\`kvfold ${path}(?![\\w-])`);
  const heading = section.split('\n')[0] ?? '';
  const found = heading.split(/,\s*/).filter((h) => named.test(h));
  for (const bullet of section.split(/^- /m).slice(1)) if (named.test(bullet)) found.push(bullet.split(/`\s+(?=[a-z(])/)[0] ?? '');
  return found;
}

test('the reference documents every command', () => {
  assert.ok(commands.length > 15, `found ${commands.length} commands`);
  const missing = commands.filter((c) => sectionsOf(c.path).length === 0).map((c) => c.path);
  assert.deepEqual(missing, [], `commands without a \`kvfold <command>\` in docs/cli.md: ${missing.join(', ')}`);
});

test('the reference names every flag of every command', () => {
  const missing: string[] = [];
  for (const { path, command } of commands) {
    const text = sectionsOf(path).map((s) => textOf(s, path)).join('\n');
    for (const flag of flagsOf(command)) if (!new RegExp(`${flag}(?![\\w-])`).test(text)) missing.push(`${path} ${flag}`);
  }
  assert.deepEqual(missing, [], `flags missing from docs/cli.md: ${missing.join(', ')}`);
});

test('every flag the reference shows for a command exists on it', () => {
  const unknown: string[] = [];
  for (const { path, command } of commands) {
    const own = new Set([...flagsOf(command), '--help']);
    for (const section of sectionsOf(path)) {
      for (const synopsis of synopses(section, path)) {
        for (const [flag] of synopsis.matchAll(/--[a-z][a-z0-9-]*/g)) if (!own.has(flag)) unknown.push(`${path} ${flag}`);
      }
    }
  }
  assert.deepEqual([...new Set(unknown)], [], `flags in docs/cli.md that the command does not have: ${unknown.join(', ')}`);
});
