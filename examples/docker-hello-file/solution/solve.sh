#!/bin/bash
echo 'Hello, prodbench!' > /app/hello.txt
