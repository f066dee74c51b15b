package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/internal/config"
)

func init() { commands = append(commands, newConfigCmd()) }

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the documented default config, the environment overrides, or check a config file",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "print-defaults",
		Short: "Write the default config file, every setting documented, to stdout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := config.Documented(config.Default())
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}, &cobra.Command{
		Use:   "env",
		Short: "List the environment variables that override config settings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VARIABLE\tSETTING")
			for _, e := range config.EnvVars {
				fmt.Fprintf(tw, "%s\t%s\n", e.Name, e.Path)
			}
			return tw.Flush()
		},
	}, &cobra.Command{
		Use:   "check FILE",
		Short: "Load a config file with the environment applied and validate it; print the result",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadConfig(args[0])
			if err != nil {
				return err
			}
			b, err := config.Documented(c)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	})
	return cmd
}

// loadConfig reads the config file (none: the defaults), applies the
// environment and validates.
func loadConfig(path string) (config.Config, error) {
	c := config.Default()
	if path != "" {
		var err error
		if c, err = config.Load(path); err != nil {
			return c, err
		}
	}
	if err := c.ApplyEnv(os.Getenv); err != nil {
		return c, fmt.Errorf("environment: %w", err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}
