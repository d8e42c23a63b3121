"""Lists: subscriber files and platform exports read, validated, segmented; who opted out."""
