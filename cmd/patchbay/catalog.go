package main

import "github.com/spf13/cobra"

func (a *app) pluginsCmd() *cobra.Command { return &cobra.Command{Use: "plugins", Hidden: true} }
func (a *app) scriptsCmd() *cobra.Command { return &cobra.Command{Use: "scripts", Hidden: true} }
