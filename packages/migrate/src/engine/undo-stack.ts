/**
 * Undo registered before each side effect (Incus's Reverter): freeze, and the thaw is already scheduled. commit()
 * drops everything once the destination has taken over; run() undoes in reverse order and collects failures instead
 * of stopping at the first, because every later undo still matters.
 */
export class UndoStack {
  private steps: { what: string; undo: () => Promise<void> | void }[] = [];

  push(what: string, undo: () => Promise<void> | void): void {
    this.steps.push({ what, undo });
  }

  /** Removes the most recent step named `what` (its effect was reversed by normal flow). */
  drop(what: string): void {
    const index = this.steps.map((s) => s.what).lastIndexOf(what);
    if (index >= 0) this.steps.splice(index, 1);
  }

  commit(): void {
    this.steps = [];
  }

  async run(): Promise<{ what: string; error: unknown }[]> {
    const failures: { what: string; error: unknown }[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step.undo();
      } catch (error) {
        failures.push({ what: step.what, error });
      }
    }
    return failures;
  }
}
