#!/bin/bash
wc -w < /app/words.txt | tr -d '[:space:]' > /app/count.txt
echo >> /app/count.txt
