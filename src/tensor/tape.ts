/**
 * The autograd tape (micrograd's idea, recorded instead of traced): ops executed inside `tape.record(fn)`
 * append a node holding their backward; `tape.backward(loss)` runs those nodes in reverse, accumulates
 * gradients (leaf parameters keep `.grad`, summed across backward calls until zeroed) and frees every
 * intermediate as soon as no remaining node needs it. Outside a recording nothing is recorded (inference).
 */
import type { Tensor } from './tensor.js';

export interface TapeNode {
  op: string;
  inputs: Tensor[];
  outputs: Tensor[];
  /** Tensors kept alive for backward (freed after this node's backward when the tape owns them). */
  saved: Tensor[];
  /** Given the gradients of the outputs (null when an output got none), returns input gradients (null to skip). */
  backward: (gradOutputs: (Tensor | null)[]) => (Tensor | null)[];
}

export interface TapeHooks {
  /** into += add */
  accumulate: (into: Tensor, add: Tensor) => void;
  /** A tensor of ones shaped like t (the default seed). */
  ones: (t: Tensor) => Tensor;
  /** A copy of t. */
  clone: (t: Tensor) => Tensor;
}

export class Tape {
  private static stack: (Tape | null)[] = [];
  static get current(): Tape | null {
    return Tape.stack.length ? Tape.stack[Tape.stack.length - 1] : null;
  }

  /** Runs fn with no tape recording (tensors created inside are not owned by any tape). */
  static untracked<T>(fn: () => T): T {
    Tape.stack.push(null);
    try {
      return fn();
    } finally {
      Tape.stack.pop();
    }
  }

  readonly nodes: TapeNode[] = [];
  /** Tensors created while recording; the tape frees them after backward unless kept. */
  private owned = new Set<Tensor>();
  private kept = new Set<Tensor>();

  constructor(private hooks: TapeHooks) {}

  /**
   * Runs fn recording every op on this tape. What fn returns (a tensor, or tensors in an array or object)
   * is kept: it belongs to the caller, who disposes it; everything else created inside is the tape's.
   */
  record<T>(fn: () => T): T {
    Tape.stack.push(this);
    let out: T;
    try {
      out = fn();
    } finally {
      Tape.stack.pop();
    }
    const keep = (v: unknown) => {
      if (v && typeof v === 'object' && this.owned.has(v as Tensor)) this.kept.add(v as Tensor);
    };
    if (Array.isArray(out)) out.forEach(keep);
    else if (out && typeof out === 'object' && !this.owned.has(out as unknown as Tensor)) Object.values(out).forEach(keep);
    else keep(out);
    return out;
  }

  get recording(): boolean {
    return Tape.current === this;
  }

  adopt(t: Tensor): void {
    this.owned.add(t);
  }

  /** Keeps a tensor created during recording alive past backward/dispose (the caller disposes it). */
  keep(t: Tensor): Tensor {
    this.kept.add(t);
    return t;
  }

  /** Whether an op with these inputs must be recorded. */
  static wants(inputs: (Tensor | null | undefined)[]): boolean {
    return Tape.current !== null && inputs.some((t) => t?.requiresGrad);
  }

  /** Called by ops: records a node if a tape is recording and any input requires grad. */
  static push(node: TapeNode): void {
    const tape = Tape.current;
    if (!tape || !node.inputs.some((t) => t.requiresGrad)) return;
    for (const o of node.outputs) {
      o.requiresGrad = true;
      o.node = node;
    }
    tape.nodes.push(node);
  }

  /**
   * Backpropagates from `root` with upstream gradient `seed` (a tensor of root's shape; default: ones).
   * Leaves that require grad receive `.grad` (added to an existing one).
   */
  backward(root: Tensor, seedIn?: Tensor): void {
    const seed = seedIn ?? Tape.untracked(() => this.hooks.ones(root));
    const grads = new Map<Tensor, Tensor>();
    grads.set(root, seed);
    // How many pending nodes still read each tensor (saved or as input): free when it drops to zero.
    const uses = new Map<Tensor, number>();
    const use = (t: Tensor) => uses.set(t, (uses.get(t) ?? 0) + 1);
    for (const n of this.nodes) for (const t of new Set([...n.saved, ...n.inputs])) use(t);
    const release = (t: Tensor) => {
      const u = (uses.get(t) ?? 0) - 1;
      uses.set(t, u);
      if (u <= 0 && this.owned.has(t) && !this.kept.has(t) && t !== root) t.dispose();
    };
    Tape.untracked(() => {
      for (let i = this.nodes.length - 1; i >= 0; i--) {
        const node = this.nodes[i];
        const gOut = node.outputs.map((o) => grads.get(o) ?? null);
        if (gOut.some((g) => g)) {
          const gIn = node.backward(gOut);
          node.inputs.forEach((inp, k) => {
            const g = gIn[k];
            if (!g) return;
            if (!inp.requiresGrad) {
              g.dispose();
              return;
            }
            if (g.size !== inp.size) throw new Error(`backward of ${node.op}: gradient for input ${k} has ${g.size} values, input ${inp.describe()} has ${inp.size}`);
            const prev = grads.get(inp);
            if (prev) {
              this.hooks.accumulate(prev, g);
              g.dispose();
            } else grads.set(inp, g);
          });
        }
        for (const [k, o] of node.outputs.entries()) {
          const g = gOut[k];
          if (g && g !== seed) g.dispose();
          grads.delete(o);
          o.node = null;
        }
        for (const t of new Set([...node.saved, ...node.inputs])) release(t);
      }
      // What is left in `grads` belongs to leaves (or to the root when nothing was recorded).
      for (const [t, gIn] of grads) {
        const isLeaf = t.node === null && t.requiresGrad && !this.owned.has(t);
        if (gIn === seed && !isLeaf) continue;
        const g = gIn === seed ? this.hooks.clone(seed) : gIn;
        if (isLeaf) {
          if (t.grad) {
            this.hooks.accumulate(t.grad, g);
            g.dispose();
          } else t.grad = g;
        } else g.dispose();
      }
    });
    if (!seedIn) seed.dispose();
    this.nodes.length = 0;
  }

  /** Frees every tensor the tape owns (except kept ones) and forgets the nodes. */
  dispose(): void {
    for (const t of this.owned) if (!this.kept.has(t)) t.dispose();
    this.owned.clear();
    this.kept.clear();
    this.nodes.length = 0;
  }
}
