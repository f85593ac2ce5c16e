/** A small synthetic YOLO dataset on disk for the val / anchors tests (PNG images, YOLO labels, YAML + .data). */
import fs from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';

export interface SynthObject {
  classId: number;
  /** Pixel corners. */
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

export interface SynthImage {
  name: string;
  width: number;
  height: number;
  objects: SynthObject[];
}

function write(file: string, data: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
}

/**
 * Writes root/images/{split}/<name>.png and root/labels/{split}/<name>.txt for each image, plus
 * root/data.yaml (train and val) and root/data.data + root/names.txt + root/{split}.txt (Darknet).
 */
export function writeDataset(root: string, splits: Record<'train' | 'val', SynthImage[]>, names: string[]): { yaml: string; data: string } {
  for (const split of ['train', 'val'] as const) {
    const list: string[] = [];
    for (const im of splits[split]) {
      const png = new PNG({ width: im.width, height: im.height });
      png.data.fill(90);
      const file = path.join(root, 'images', split, `${im.name}.png`);
      write(file, PNG.sync.write(png));
      list.push(file);
      const lines = im.objects.map((o) => `${o.classId} ${((o.x1 + o.x2) / 2 / im.width).toFixed(8)} ${((o.y1 + o.y2) / 2 / im.height).toFixed(8)} ${((o.x2 - o.x1) / im.width).toFixed(8)} ${((o.y2 - o.y1) / im.height).toFixed(8)}\n`);
      write(path.join(root, 'labels', split, `${im.name}.txt`), lines.join(''));
    }
    write(path.join(root, `${split}.txt`), `${list.join('\n')}\n`);
  }
  const yaml = path.join(root, 'data.yaml');
  write(yaml, `path: .\ntrain: images/train\nval: images/val\nnames: [${names.join(', ')}]\n`);
  write(path.join(root, 'names.txt'), `${names.join('\n')}\n`);
  const data = path.join(root, 'data.data');
  write(data, `classes=${names.length}\ntrain=${path.join(root, 'train.txt')}\nvalid=${path.join(root, 'val.txt')}\nnames=${path.join(root, 'names.txt')}\n`);
  return { yaml, data };
}
