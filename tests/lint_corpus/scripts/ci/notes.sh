#!/usr/bin/env bash
echo "docker build is not run here"
