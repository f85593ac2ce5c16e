/**
 * The activation codes: the one table both sides use. TS passes `ACT_CODE[a]` (an `override ACT` or the conv
 * epilogue's uniform `act`); the WGSL side gets the same numbers as constants `ACT_LINEAR`, `ACT_LEAKY`, ...
 * through `// #include "generated/act_codes.wgsl"` (kernels/lib/act.wgsl includes it), which the kernel
 * loader generates from this table (src/gpu/device.ts GENERATED_INCLUDES). No number is copied by hand.
 * A leaf module (no imports) so the GPU runtime can import it without pulling in the tensor ops.
 */

/** Darknet activations, in code order: the code of ACTIVATIONS[i] is i. */
export const ACTIVATIONS = ['linear', 'leaky', 'logistic', 'relu', 'mish', 'swish', 'relu6', 'ramp', 'tanh'] as const;
export type Activation = (typeof ACTIVATIONS)[number];
export const ACT_CODE: Readonly<Record<Activation, number>> = Object.freeze(
  Object.fromEntries(ACTIVATIONS.map((a, i) => [a, i])) as Record<Activation, number>,
);

/** The WGSL constants of the table: `const ACT_LEAKY: u32 = 1u;` ... */
export function activationCodesWgsl(): string {
  const lines = ACTIVATIONS.map((a) => `const ACT_${a.toUpperCase()}: u32 = ${ACT_CODE[a]}u;`);
  return `// Generated from ACTIVATIONS in src/tensor/ops/act_codes.ts (the activation codes the ops pass).\n${lines.join('\n')}\n`;
}
