"""Community jams (docs/jams.md): a chat writes a song together, votes on its takes."""
