import { foldJournal, type JournalRecord } from '../journal/journal';
import { planRecovery, type RecoveryFacts } from './plan-recovery';

const begin: JournalRecord = { t: 'begin', role: 'source', id: 'm1', runtime: 'runc', container: 'web', peer: 'h2' };
const journal = (...records: JournalRecord[]) => foldJournal([begin, ...records]);
const dead: RecoveryFacts = { ownerAlive: false };

test('one line per journal state: what recovery does with a move whose owner died', () => {
  const frozen: JournalRecord[] = [
    { t: 'plan', strategy: 'hash-pre-copy', reason: 'x' },
    { t: 'hold', kind: 'prepared', name: 'web' },
    { t: 'phase', phase: 'freeze' },
    { t: 'hold', kind: 'frozen' },
    { t: 'hold', kind: 'fence' },
    { t: 'phase', phase: 'checkpoint' },
    { t: 'hold', kind: 'dump', marker: '/var/lib/ferry/migrations/m1/images', port: 4000 },
  ];
  const post = [{ t: 'plan', strategy: 'post-copy', reason: 'x' } as JournalRecord, ...frozen.slice(1)];
  const lazy = [{ t: 'plan', strategy: 'hash-pre-copy', reason: 'x', lazyRestore: true } as JournalRecord, ...frozen.slice(1)];
  const cases: Record<string, [JournalRecord[], RecoveryFacts]> = {
    'its guardian still runs': [frozen, { ownerAlive: true }],
    'over': [[...frozen, { t: 'done', outcome: 'moved' }], dead],
    'died before connecting': [[{ t: 'phase', phase: 'connect' }], dead],
    'died frozen, dump held': [frozen, dead],
    'commit sent, not asked yet': [[...frozen, { t: 'commit-intent' }], dead],
    'commit sent, destination committed': [[...frozen, { t: 'commit-intent' }], { ownerAlive: false, remote: { decision: 'committed' } }],
    'commit sent, destination aborted': [[...frozen, { t: 'commit-intent' }], { ownerAlive: false, remote: { decision: 'aborted' } }],
    'commit sent, destination has no word': [[...frozen, { t: 'commit-intent' }], { ownerAlive: false, remote: {} }],
    'commit sent, destination unreachable': [[...frozen, { t: 'commit-intent' }], { ownerAlive: false, remote: 'unreachable' }],
    'committed hash-pre-copy': [[...frozen, { t: 'commit-intent' }, { t: 'committed' }], dead],
    'committed post-copy, not asked yet': [[...post, { t: 'commit-intent' }, { t: 'committed' }], dead],
    'committed post-copy, pages complete': [[...post, { t: 'commit-intent' }, { t: 'committed' }], { ownerAlive: false, remote: { decision: 'committed', pages: 'complete' } }],
    'committed post-copy, pages lost': [[...post, { t: 'commit-intent' }, { t: 'committed' }], { ownerAlive: false, remote: { decision: 'committed', pages: 'lost' } }],
    'committed post-copy, pages pending': [[...post, { t: 'commit-intent' }, { t: 'committed' }], { ownerAlive: false, remote: { decision: 'committed', pages: 'pending' } }],
    'committed post-copy, dump already ended': [[...post, { t: 'commit-intent' }, { t: 'committed' }, { t: 'release', kind: 'dump' }], dead],
    'committed lazy restore, not asked yet': [[...lazy, { t: 'commit-intent' }, { t: 'committed' }], dead],
    'committed lazy restore, pages lost': [[...lazy, { t: 'commit-intent' }, { t: 'committed' }], { ownerAlive: false, remote: { decision: 'committed', pages: 'lost' } }],
    'committed lazy restore, pages complete': [[...lazy, { t: 'commit-intent' }, { t: 'committed' }], { ownerAlive: false, remote: { decision: 'committed', pages: 'complete' } }],
    'committed lazy restore, destination unreachable': [[...lazy, { t: 'commit-intent' }, { t: 'committed' }], { ownerAlive: false, remote: 'unreachable' }],
  };
  const table = Object.fromEntries(Object.entries(cases).map(([what, [records, facts]]) => {
    const a = planRecovery(journal(...records), facts);
    return [what, `${a.kind}${'cleanDestination' in a ? (a.cleanDestination ? ' +clean destination' : '') : ''}: ${a.why}`];
  }));
  expect(table).toMatchSnapshot();
});

test('a destination journal is left to the agent', () => {
  const state = foldJournal([{ ...begin, role: 'destination' } as JournalRecord]);
  expect(planRecovery(state, dead).kind).toBe('leave');
});
