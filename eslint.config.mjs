import js from "@eslint/js";
import tseslint from "typescript-eslint";
import prettier from "eslint-config-prettier";
import globals from "globals";

export default tseslint.config(
  { ignores: ["node_modules/", "coverage/", "scratch/", "public/vendor/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        require: "readonly",
        module: "writable",
        __dirname: "readonly",
      },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["**/*.cjs", "**/*.js"],
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    // plain Node scripts (bench/sse-floor.mjs)
    files: ["bench/**/*.mjs"],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    // the dashboard: browser ES modules; text from the network never becomes markup
    files: ["public/**/*.js"],
    languageOptions: { sourceType: "module", globals: { ...globals.browser } },
    rules: {
      "no-restricted-properties": [
        "error",
        { property: "innerHTML", message: "Build elements with h() from dom.js; text stays text." },
        { property: "outerHTML", message: "Build elements with h() from dom.js; text stays text." },
        { property: "insertAdjacentHTML", message: "Build elements with h() from dom.js; text stays text." },
        { object: "document", property: "write", message: "Build elements with h() from dom.js." },
      ],
      "no-restricted-syntax": [
        "error",
        { selector: "AssignmentExpression[left.property.name='innerHTML']", message: "No innerHTML." },
      ],
    },
  },
);
