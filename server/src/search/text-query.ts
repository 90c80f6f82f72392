/**
 * What `q` means everywhere it is accepted (REST logs, the live log tail, commands, audit):
 * every term must match, case- and accent-insensitive; a bare word matches the start of a word
 * ("cam" finds "camera"); a "quoted phrase" matches adjacent words, its last word by prefix.
 * Words are runs of letters and digits, so `log_records` is the two words "log" and "records".
 * This module is the one implementation: SQL calls it as dvic_match(q, text).
 */

/** A parsed query: each term a list of words (one word, or a phrase). */
export type TextQuery = string[][];

const WORD = /[\p{L}\p{N}]+/gu;
const MAX_TERMS = 16;

/**
 * Case- and accent-insensitive: Latin-style accents (the combining diacritical marks U+0300-U+036F
 * of the decomposed text) go, everything else is composed back, so Hangul, kana with voicing
 * marks, Indic vowel signs and Hebrew points keep their meaning.
 */
const fold = (text: string) => text.normalize('NFD').replace(/[\u0300-\u036f]+/g, '').normalize('NFC').toLowerCase();

/** Most log lines are ASCII: for them folding is lower case and words are runs of [a-z0-9], the same result much cheaper. */
const NON_ASCII = /[\u0080-\uffff]/;
const ASCII_WORD = /[a-z0-9]+/g;

export function words(text: string): string[] {
  if (!NON_ASCII.test(text)) return text.toLowerCase().match(ASCII_WORD) ?? [];
  return unicodeWords(text);
}

/** The words of any text, without the ASCII shortcut (a test holds words() to it). */
export function unicodeWords(text: string): string[] {
  return fold(text).match(WORD) ?? [];
}

/**
 * What the full-text index stores for a message: its folded words. Index and matcher then cut and
 * fold text the same way, so the index lookup is always a superset of what the matcher accepts.
 */
export function indexText(message: string): string {
  return words(message).join(' ');
}

/** Parses what a user typed; null when there is nothing to look for. */
export function parseTextQuery(q: string): TextQuery | null {
  const terms: TextQuery = [];
  const parts = q.split('"');
  parts.forEach((part, i) => {
    const found = words(part);
    if (i % 2 === 1) {
      if (found.length) terms.push(found); // inside quotes (an unclosed quote runs to the end)
    } else {
      for (const w of found) terms.push([w]);
    }
  });
  return terms.length ? terms.slice(0, MAX_TERMS) : null;
}

function termMatches(term: string[], text: string[]): boolean {
  const last = term.length - 1;
  for (let i = 0; i + last < text.length; i++) {
    let j = 0;
    while (j < last && text[i + j] === term[j]) j++;
    if (j === last && text[i + last]!.startsWith(term[last]!)) return true;
  }
  return false;
}

export function matchesText(query: TextQuery, text: string): boolean {
  const found = words(text);
  return query.every((term) => termMatches(term, found));
}

/** Every word of the query, for an index lookup that returns a superset (FTS5 prefix terms). */
export function indexTerms(query: TextQuery): string {
  return query.flat().map((w) => `"${w}"*`).join(' ');
}

/**
 * Longest word PostgreSQL's search column keeps (it drops words past 2047 bytes): longer than any
 * query word (q has at most 256 characters), so a clipped word still matches exactly what the
 * whole word would.
 */
const MAX_SEARCH_WORD = 400;

/** A message's words as PostgreSQL's search keeps them (log_records.search_words, space-separated): very long words clipped. */
export function searchWordList(message: string): string[] {
  return words(message).map((w) => (w.length > MAX_SEARCH_WORD ? [...w].slice(0, MAX_SEARCH_WORD).join('') : w));
}


/** A word as a quoted tsquery lexeme (words hold only letters and digits; quoted all the same). */
const lexeme = (word: string) => `'${word.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/**
 * The query as a PostgreSQL tsquery literal, for CAST(? AS tsquery) against log_search_blocks.words
 * (searchWordList's words as lexemes, no text search parser on either side): every word of every term
 * ANDed, the last word of each term by prefix (:*). The vector has no positions, so a phrase
 * narrows to the records with all its words; termNeedles decide adjacency. A superset of the
 * matches, exactly: a term's needle is found only where each of its words is a word of the
 * record, the last one by prefix.
 */
export function tsQueryText(query: TextQuery): string {
  return query.map((term) => term.map((w, i) => lexeme(w) + (i === term.length - 1 ? ':*' : '')).join(' & ')).join(' & ');
}

/**
 * Each term as the text it must contain in ' ' + log_records.search_words: a space, its words
 * separated by spaces, the last one by prefix. Exactly what matchesText decides, as a substring test.
 */
export function termNeedles(query: TextQuery): string[] {
  return query.map((term) => ` ${term.join(' ')}`);
}

const compiled = new Map<string, TextQuery | null>();

/** The SQL function dvic_match(q, text): 1 when text matches q (queries are cached). */
export function sqlMatch(q: string, text: string | null): number {
  let query = compiled.get(q);
  if (query === undefined) {
    if (compiled.size > 256) compiled.clear();
    query = parseTextQuery(q);
    compiled.set(q, query);
  }
  return query === null || (text !== null && matchesText(query, text)) ? 1 : 0;
}
