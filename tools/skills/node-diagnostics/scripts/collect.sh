#!/bin/sh
# Read-only snapshot of a node's health.
echo "== uptime"; uptime
echo "== memory"; free -m 2>/dev/null || vm_stat 2>/dev/null
echo "== disks"; df -h
echo "== top processes"; ps aux --sort=-%cpu 2>/dev/null | head -15 || ps aux | head -15
