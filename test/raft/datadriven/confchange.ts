// The confchange scripts of etcd's Raft tests. One Changer lives across the directives
// of a file; each directive applies its changes, installs the result, and prints the
// config and the progress map (or the error). The changer's last index grows by one per
// directive, errors included, so `next` of a new node tells in which directive it was
// added.
//
//   simple              + input `v1 l2 r3 u4` (voter, learner, remove, update)
//   enter-joint [autoleave=true|false] + input
//   leave-joint         (no input)
import { Changer, type ConfigAndProgress } from '../../../src/raft/confchange.js';
import { confChangesFromString } from '../../../src/raft/confchange-codec.js';
import { progressMapToString } from '../../../src/raft/progress.js';
import { configToString, ProgressTracker } from '../../../src/raft/tracker.js';
import { argBool, type Directive, type Handler } from './parse.js';

export function handleConfChange(): Handler {
  const tracker = new ProgressTracker(10, Infinity);
  const changer = new Changer(tracker, 0);

  const run = (d: Directive): ConfigAndProgress => {
    const ccs = confChangesFromString(d.input.join(' '));
    switch (d.cmd) {
      case 'simple':
        return changer.simple(...ccs);
      case 'enter-joint':
        return changer.enterJoint(argBool(d, 'autoleave') ?? false, ...ccs);
      case 'leave-joint':
        if (ccs.length > 0) throw new Error('this command takes no input');
        return changer.leaveJoint();
      default:
        throw new Error('unknown command');
    }
  };

  return (d) => {
    try {
      [tracker.config, tracker.progress] = run(d);
      return `${configToString(tracker.config)}\n${progressMapToString(tracker.progress)}`;
    } catch (err) {
      return `${err instanceof Error ? err.message : String(err)}\n`;
    } finally {
      changer.lastIndex++;
    }
  };
}
