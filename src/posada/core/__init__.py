"""What every other package stands on: settings, the error tree, text and language, and
the running request's figures. Imports nothing of posada outside itself."""
