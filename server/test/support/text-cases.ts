// What `q` finds, the same wherever it is accepted: search/text-query.test.ts runs these against
// every matcher, repositories/logs-repository.test.ts against the log store of each dialect.

export const TEXTS = [
  'Camera ready on usb-0',
  'camera lost: frame dropped',
  'disk almost full',
  'Kiosk mode started',
  'café ouvert à 9h',
  'log_records table rebuilt',
  'the frame rate is low',
  '한국 서버 오류',
  'ガンダム 起動',
  'नमस्ते दुनिया',
  'สวัสดี ครับ',
  'שָׁלוֹם עולם',
];

/** q -> the texts it finds. */
export const CASES: [string, string[]][] = [
  ['camera', ['Camera ready on usb-0', 'camera lost: frame dropped']],
  ['CAM', ['Camera ready on usb-0', 'camera lost: frame dropped']],
  ['amera', []],
  ['camera frame', ['camera lost: frame dropped']],
  ['"frame dropped"', ['camera lost: frame dropped']],
  ['"frame drop"', ['camera lost: frame dropped']],
  ['"dropped frame"', []],
  ['"frame rate" low', ['the frame rate is low']],
  ['cafe', ['café ouvert à 9h']],
  ['records', ['log_records table rebuilt']],
  ['log_records', ['log_records table rebuilt']],
  ['usb-0', ['Camera ready on usb-0']],
  ['"unclosed quote frame', []],
  ['"unclosed frame', []],
  ['frame "', ['camera lost: frame dropped', 'the frame rate is low']],
  ['"', TEXTS],
  ['%', TEXTS],
  ["'; DROP TABLE log_records; --", []],
  ['한국', ['한국 서버 오류']],
  ['서', ['한국 서버 오류']],
  ['ガンダム', ['ガンダム 起動']],
  ['カンタム', []],
  ['नमस्ते', ['नमस्ते दुनिया']],
  ['สวัสดี', ['สวัสดี ครับ']],
  ['"שָׁלוֹם עולם"', ['שָׁלוֹם עולם']],
  ['"camera lost" frame drop c l f d', ['camera lost: frame dropped']],
  // At most 16 terms count: the 17th (which matches nothing) is left out.
  ['camera lost frame dropped camera lost frame dropped camera lost frame dropped camera lost frame dropped zzz', ['camera lost: frame dropped']],
];
