/**
 * Undo registered before each side effect (Incus's revert.Reverter): freeze, and the thaw is already scheduled.
 * Each step is a handle the caller keeps: release() when normal flow reversed its effect (a clone thawed its source),
 * success() once the destination has taken over. fail() undoes in reverse order and collects failures instead of
 * stopping at the first, because every later undo still matters.
 */
export interface UndoStep {
  readonly what: string;
  /** Its effect was reversed by normal flow: nothing to undo any more. */
  release(): void;
}

export interface UndoFailure {
  step: UndoStep;
  error: unknown;
}

interface Entry extends UndoStep {
  undo: () => Promise<void> | void;
}

export class Reverter {
  private steps: Entry[] = [];

  add(what: string, undo: () => Promise<void> | void): UndoStep {
    const entry: Entry = {
      what,
      undo,
      release: () => {
        this.steps = this.steps.filter((s) => s !== entry);
      },
    };
    this.steps.push(entry);
    return entry;
  }

  /**
   * Past the point of no return: nothing is undone any more. Returns the steps that were pending, as a new Reverter,
   * for the one caller that may still need them (post-copy, should the destination lose its copy before every page
   * arrived).
   */
  success(): Reverter {
    const rest = new Reverter();
    rest.steps = this.steps.splice(0);
    return rest;
  }

  async fail(): Promise<UndoFailure[]> {
    const failures: UndoFailure[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step.undo();
      } catch (error) {
        failures.push({ step, error });
      }
    }
    return failures;
  }
}
