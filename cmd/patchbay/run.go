package main

import "github.com/spf13/cobra"

func (a *app) runCmd() *cobra.Command  { return &cobra.Command{Use: "run", Hidden: true} }
func (a *app) jobsCmd() *cobra.Command { return &cobra.Command{Use: "jobs", Hidden: true} }
