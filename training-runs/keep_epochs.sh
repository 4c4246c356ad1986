#!/bin/bash
# Copy each new last.pt of a run to <dest>/epoch_<N>.pt (N = finished epochs counted in the log).
run=$1; log=$2; dest=$3; prev=""
while true; do
  if [ -f "$run/last.pt" ]; then
    m=$(stat -c %Y "$run/last.pt")
    if [ "$m" != "$prev" ]; then
      sleep 5
      n=$(grep -a -o "epoch [0-9]*: loss" "$log" | tail -1 | grep -o "[0-9]*" | head -1)
      cp "$run/last.pt" "$dest/epoch_${n}.pt"; prev=$m
    fi
  fi
  sleep 30
done
