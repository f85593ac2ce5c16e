// examples/browser/train.html's training thread: train-core.js in a module Worker. Without WebGPU here (a
// browser that offers navigator.gpu to pages only) it says so, and the page trains in its own thread.
import { trainer } from './train-core.js';

const post = (m, transfer) => postMessage(m, transfer ?? []);
if (!navigator.gpu) post({ type: 'no-webgpu' });
else {
  const handle = trainer(post);
  onmessage = (ev) => handle(ev.data);
  post({ type: 'ready' });
}
