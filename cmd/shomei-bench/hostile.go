package main

import "github.com/spf13/cobra"

func newHostileCommand() *cobra.Command { return &cobra.Command{Use: "hostile", Hidden: true} }
