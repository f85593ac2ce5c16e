#!/usr/bin/env bash
# The fine-tuning study of docs/finetune.md, command for command: Darknet's "train on your own objects"
# recipe with yolov4-tiny-custom.cfg, run on the CPU (lavapipe) at 128 px.
#   A: pretrain on the demo's synthetic shapes (circle, square, triangle: 3 classes)
#   cut it with `partial --layers 29` (yolov4-tiny.conv.29's cut)
#   B: another task (ring, cross, diamond, hexagon: 4 classes), trained at equal iterations from
#      (a) scratch, (b) the cut, (c) the full weights transferred by shape (--clear), (d) the cut, frozen.
#
#   scripts/finetune-study.sh [WORK]      WORK: a folder outside the checkout (default /tmp/ft)
#   DARKNET_CFG=/path/to/darknet/cfg      where yolov4-tiny-custom.cfg is (default /work/shared/darknet-cfg)
#   STEPS=data,cfg,pretrain,partial,scratch,partial-ft,transfer,freeze,eval   a subset to run (default all)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mkdir -p "${1:-/tmp/ft}" && cd "${1:-/tmp/ft}" && pwd)
CFG_DIR=${DARKNET_CFG:-/work/shared/darknet-cfg}
STEPS=${STEPS:-data,cfg,pretrain,partial,scratch,partial-ft,transfer,freeze,eval}
yolo-wgsl() { node "$REPO/bin/yolo-wgsl.js" "$@"; }
want() { [[ ",$STEPS," == *",$1,"* ]]; }
cd "$WORK"

# yolo-obj.cfg from yolov4-tiny-custom.cfg: classes= in both [yolo], filters=(classes+5)*3 in the conv
# before each, 128 px, batch 8, Adam at 0.002 with a 30-iteration burn-in, the run's length and steps
custom_cfg() { # classes max_batches steps out
  sed -e 's/^batch=64$/batch=8/' -e 's/^width=416$/width=128/' -e 's/^height=416$/height=128/' \
      -e 's/^learning_rate=.*/learning_rate=0.002\nadam=1/' -e 's/^burn_in=.*/burn_in=30/' \
      -e "s/^max_batches = .*/max_batches=$2/" -e "s/^steps=.*/steps=$3/" \
      -e "s/^filters=255$/filters=$((($1 + 5) * 3))/" -e "s/^classes=80$/classes=$1/" \
      "$CFG_DIR/yolov4-tiny-custom.cfg" > "$4"
}

if want data; then
  (cd "$REPO" && node --import tsx scripts/synth-data.ts --out "$WORK/shapes" --train 1000 --val 100 --size 128 --seed 1)
  (cd "$REPO" && node --import tsx scripts/synth-data.ts --out "$WORK/objects" --classes ring,cross,diamond,hexagon \
     --train 400 --val 100 --size 128 --seed 2)
fi
if want cfg; then
  custom_cfg 3 1200 960,1080 shapes-tiny.cfg
  custom_cfg 4 300 240,270 objects-tiny.cfg
  # Darknet: detector calc_anchors obj.data -num_of_clusters 6 -width 128 -height 128
  yolo-wgsl anchors --data shapes/synth.data --num 6 --img 128 --cfg shapes-tiny.cfg --cfg-out shapes-tiny.cfg
  yolo-wgsl anchors --data objects/synth.data --num 6 --img 128 --cfg objects-tiny.cfg --cfg-out objects-tiny.cfg
fi
# A: pretrain (Darknet: detector train shapes.data shapes-tiny.cfg -map). The measured run was stopped with
# Ctrl-C at iteration 503, after epoch 4's validation (docs/finetune.md says why); Ctrl-C (or the end of
# the run) leaves the weights in runs/pretrain/weights/last.weights, which the next steps start from.
want pretrain && yolo-wgsl train --cfg shapes-tiny.cfg --data shapes/synth.data --out runs --name pretrain --exist-ok
# the cut (Darknet: partial shapes-tiny.cfg shapes-tiny_last.weights shapes-tiny.conv.29 29)
want partial && yolo-wgsl partial --cfg shapes-tiny.cfg --weights runs/pretrain/weights/last.weights --out shapes-tiny.conv.29 --layers 29
# B, equal iterations (the cfg's max_batches=300), same seed and schedule, validated every epoch (50 iterations)
want scratch && yolo-wgsl train --cfg objects-tiny.cfg --data objects/synth.data --out runs --name scratch --exist-ok
want partial-ft && yolo-wgsl train --cfg objects-tiny.cfg --data objects/synth.data --weights shapes-tiny.conv.29 --out runs --name partial --exist-ok
want transfer && yolo-wgsl train --cfg objects-tiny.cfg --data objects/synth.data --weights runs/pretrain/weights/last.weights \
  --weights-cfg shapes-tiny.cfg --clear --out runs --name transfer --exist-ok
want freeze && yolo-wgsl train --cfg objects-tiny.cfg --data objects/synth.data --weights shapes-tiny.conv.29 --freeze 29 --out runs --name freeze --exist-ok
if want eval; then
  # Darknet: detector map objects.data objects-tiny.cfg <weights>; detector test ... <image>
  for r in scratch partial transfer freeze; do
    [ -f "runs/$r/weights/final.weights" ] || continue
    yolo-wgsl val --data objects/synth.data --cfg objects-tiny.cfg --weights "runs/$r/weights/final.weights" --protocol voc --out "val-$r" | grep "protocol voc:"
  done
  yolo-wgsl detect --cfg objects-tiny.cfg --weights runs/transfer/weights/final.weights --names objects/synth.names \
    --source objects/images/val/000001.png --out detect
fi
